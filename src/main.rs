fn main() {
    std::process::exit(ollama_secure::run(std::env::args_os()));
}
