//! What a terminal shows after some output: a grid of `rows` × `cols`
//! cells, driven by the escape sequences the wizard's prompts use (cursor
//! up/down/left/right and to a column, erase in line and in display,
//! carriage return, line feed with scrolling, and wrapping at the right
//! edge). A PTY test gets a byte stream; this turns it into the screen a
//! person would be looking at, so that a test can say what stayed there.

pub struct Screen {
    cols: usize,
    lines: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// At the right edge, the next character wraps first (as xterm does).
    pending_wrap: bool,
}

impl Screen {
    pub fn new(rows: usize, cols: usize) -> Screen {
        Screen { cols, lines: vec![vec![' '; cols]; rows], row: 0, col: 0, pending_wrap: false }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let mut parser = vte::Parser::new();
        parser.advance(self, bytes);
    }

    /// The visible lines, without trailing blanks, and without the blank
    /// lines at the bottom.
    pub fn text(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.lines.iter().map(|l| l.iter().collect::<String>().trim_end().to_string()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    fn line_feed(&mut self) {
        if self.row + 1 == self.lines.len() {
            self.lines.remove(0);
            self.lines.push(vec![' '; self.cols]);
        } else {
            self.row += 1;
        }
    }
}

impl vte::Perform for Screen {
    fn print(&mut self, c: char) {
        if self.pending_wrap {
            self.pending_wrap = false;
            self.col = 0;
            self.line_feed();
        }
        self.lines[self.row][self.col] = c;
        if self.col + 1 == self.cols {
            self.pending_wrap = true;
        } else {
            self.col += 1;
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\r' => {
                self.col = 0;
                self.pending_wrap = false;
            }
            b'\n' => {
                self.pending_wrap = false;
                self.line_feed();
            }
            0x08 => {
                self.pending_wrap = false;
                self.col = self.col.saturating_sub(1);
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, intermediates: &[u8], _ignore: bool, action: char) {
        if !intermediates.is_empty() {
            return; // private modes (`?25l`, the cursor shown or hidden) change no cell
        }
        let first = params.iter().next().and_then(|p| p.first().copied()).unwrap_or(0) as usize;
        let count = first.max(1);
        self.pending_wrap = false;
        match action {
            'A' => self.row = self.row.saturating_sub(count),
            'B' => self.row = (self.row + count).min(self.lines.len() - 1),
            'C' => self.col = (self.col + count).min(self.cols - 1),
            'D' => self.col = self.col.saturating_sub(count),
            'G' => self.col = (count - 1).min(self.cols - 1),
            'K' => {
                let line = &mut self.lines[self.row];
                let range = match first {
                    0 => self.col..self.cols,
                    1 => 0..self.col + 1,
                    _ => 0..self.cols,
                };
                line[range].iter_mut().for_each(|c| *c = ' ');
            }
            'J' => {
                let (from, to) = match first {
                    0 => (self.row + 1, self.lines.len()),
                    1 => (0, self.row),
                    _ => (0, self.lines.len()),
                };
                for line in &mut self.lines[from..to] {
                    line.iter_mut().for_each(|c| *c = ' ');
                }
                if first == 0 {
                    self.lines[self.row][self.col..].iter_mut().for_each(|c| *c = ' ');
                }
            }
            _ => {}
        }
    }
}

#[test]
fn wraps_scrolls_and_erases() {
    let mut screen = Screen::new(3, 5);
    screen.feed(b"abcdefg\r\nxy\x1b[1A\r\x1b[2Kz\r\n\r\nq\r\nr");
    assert_eq!(screen.text(), vec!["xy", "q", "r"]);
}
