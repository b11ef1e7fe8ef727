//! URL password redaction: the one place that finds the password of a URL's user info, for
//! every URL laissez is given (a Redis ledger's, a broker's `amqp://`).
//!
//! It lives here, in `laissez-ledger`, because this is the lowest crate that every user of it
//! depends on: the ledger location (`LedgerLocation`, `RedisUrl`) shows its URL with it, and
//! `laissez-amqp`, the CLI and the Python binding all depend on `laissez-ledger` already
//! (`laissez-amqp` → `laissez-ledger` → `laissez-verify`), so none gains a dependency and no
//! cycle can form. `laissez-verify` (`no_std`, about envelopes) is no place for URLs, and a
//! crate of its own for this one module would be a crate more to publish.
//!
//! A password is found by the last `@` of the URL, not the first `/` after the scheme: a
//! password written with an unencoded `/`, `?`, `#`, `@` or `:` is still found (a strict URL
//! parser would end the authority early and never see it). A URL whose path holds an `@`
//! redacts too much, never too little.

/// Where the password of `url`'s user info is, as written (still percent-encoded), if any:
/// `scheme://[user]:PASSWORD@host…`.
fn password_span(url: &str) -> Option<std::ops::Range<usize>> {
    let start_of_rest = url.find("://")? + 3;
    let rest = &url[start_of_rest..];
    let end_of_userinfo = rest.rfind('@')?;
    let colon = rest[..end_of_userinfo].find(':')?;
    let span = start_of_rest + colon + 1..start_of_rest + end_of_userinfo;
    (!span.is_empty()).then_some(span)
}

/// `url` with the password of its user info, if any, replaced by `***`, e.g.
/// `redis://user:***@host:6379/0`. What a URL is shown as, in `Debug`, `Display` and errors.
pub fn without_password(url: &str) -> String {
    match password_span(url) {
        Some(span) => format!("{}***{}", &url[..span.start], &url[span.end..]),
        None => url.to_owned(),
    }
}

/// `text` with every occurrence of `url`'s password blanked out as `***`, both as written in
/// `url` and percent-decoded (an error message may quote either). `text` unchanged when `url`
/// has no password.
pub fn redact_password(url: &str, text: &str) -> String {
    let Some(span) = password_span(url) else {
        return text.to_owned();
    };
    let written = &url[span];
    let decoded = percent_decode(written);
    // The longer first: blanking one must not leave a part of the other showing.
    let (first, second) = if decoded.len() > written.len() {
        (decoded.as_str(), written)
    } else {
        (written, decoded.as_str())
    };
    text.replace(first, "***").replace(second, "***")
}

/// `text` with each `%XX` replaced by its byte; bytes that are not UTF-8 become U+FFFD.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_replaced_and_the_rest_kept() {
        for (url, shown) in [
            (
                "amqp://guest:s3cret@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            ("redis://:p%40ss@redis:6379/0", "redis://:***@redis:6379/0"),
            // Unencoded '@' and ':' in the password: all of it goes.
            ("redis://u:p@ss:w@rd@h:1/", "redis://u:***@h:1/"),
            ("redis://u:pa/ss@h:1/", "redis://u:***@h:1/"),
            (
                "rediss+cluster://u:p%3Aw@a:1,b:2",
                "rediss+cluster://u:***@a:1,b:2",
            ),
            // No password: unchanged.
            ("amqp://guest@host/%2f", "amqp://guest@host/%2f"),
            ("redis://u:@h/", "redis://u:@h/"),
            ("redis://h:6379/", "redis://h:6379/"),
            ("uses.redb", "uses.redb"),
        ] {
            assert_eq!(without_password(url), shown, "{url}");
        }
    }

    #[test]
    fn text_loses_the_password_as_written_and_decoded() {
        assert_eq!(
            redact_password("redis://:p%40ss@r/", "p%40ss and p@ss and pss"),
            "*** and *** and pss"
        );
        assert_eq!(
            redact_password("amqp://u:s3cret@h/%2f", "auth s3cret refused"),
            "auth *** refused"
        );
        // Percent-encoded user info, a decoded password with '@' and ':' in it.
        let url = "amqp://us%40er:a%40b%3Ac%25d@h/";
        assert_eq!(redact_password(url, "a@b:c%d | a%40b%3Ac%25d"), "*** | ***");
        assert_eq!(redact_password("amqp://h/", "nothing"), "nothing");
    }
}
