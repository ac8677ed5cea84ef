//! When a certificate expires: notAfter, read from its DER encoding. Only
//! the few fields on the way there are parsed; the certificate itself was
//! verified by the TLS library. Pure.

use std::time::SystemTime;

/// Days from `now` until the end of a DER certificate's validity.
pub fn days_left(der: &[u8], now: SystemTime) -> Option<i64> {
    let not_after = x509_not_after(der)?;
    let secs = match not_after.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    Some(secs.div_euclid(86_400))
}

/// One DER element: (tag, content, rest).
fn der(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[allow(clippy::string_slice)] // `text` is checked to be ASCII before any slice.
/// notAfter of an X.509 certificate: Certificate → TBSCertificate →
/// [version] serial signature issuer validity{notBefore notAfter}.
fn x509_not_after(cert: &[u8]) -> Option<SystemTime> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        rest = der(rest)?.2; // serial, signature algorithm, issuer
    }
    let (_, validity, _) = der(rest)?;
    let (_, _, after_not_before) = der(validity)?;
    let (tag, time, _) = der(after_not_before)?;
    // Digits and 'Z' only: the byte positions below are then characters.
    let text = std::str::from_utf8(time).ok().filter(|t| t.is_ascii())?;
    let full = match tag {
        0x17 if text.len() == 13 => {
            let year: u32 = text[..2].parse().ok()?;
            format!("{}{}", if year < 50 { "20" } else { "19" }, text)
        }
        0x18 if text.len() == 15 => text.to_string(),
        _ => return None,
    };
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_certificates_give_none_without_panicking() {
        let now = SystemTime::now();
        for der in [&[][..], &[0x30], &[0x30, 0x82, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01, 0x00]] {
            assert_eq!(days_left(der, now), None);
        }
        // A UTCTime of 13 bytes that is not ASCII.
        let time = "2é0101000000".as_bytes();
        let mut tbs = vec![0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00];
        tbs.extend([0x30, (time.len() + 4) as u8, 0x17, 0x00, 0x17, time.len() as u8]);
        tbs.extend(time);
        let mut cert = vec![0x30, (tbs.len() + 2) as u8, 0x30, tbs.len() as u8];
        cert.extend(tbs);
        assert_eq!(days_left(&cert, now), None);
    }
}
