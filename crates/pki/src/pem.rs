//! Finding the DER inside a PEM text.

use x509_parser::pem::Pem;

use crate::PkiError;

/// Returns the label and DER contents of the first PEM block in `input`
/// whose label is one of `labels`.
///
/// Lines are trimmed first, so indented or CRLF text (pasted from JSON or a
/// Windows editor) reads the same as a clean file. Text around the blocks,
/// and blocks with other labels (`EC PARAMETERS`, a chain's other
/// certificates), are skipped.
pub(crate) fn find_block(
    input: &str,
    what: &'static str,
    labels: &[&str],
) -> Result<(String, Vec<u8>), PkiError> {
    let normalised: String = input.lines().map(|l| format!("{}\n", l.trim())).collect();
    let mut seen = Vec::new();
    for block in Pem::iter_from_buffer(normalised.as_bytes()) {
        let block = block.map_err(|e| PkiError::InvalidPem {
            what,
            detail: format!("{e}"),
        })?;
        if labels.contains(&block.label.as_str()) {
            return Ok((block.label, block.contents));
        }
        seen.push(block.label);
    }
    let expected = labels
        .iter()
        .map(|l| format!("-----BEGIN {l}-----"))
        .collect::<Vec<_>>()
        .join(" or ");
    let detail = if seen.is_empty() {
        format!("no {expected} block found")
    } else {
        format!("found {} block(s) but no {expected}", seen.join(", "))
    };
    Err(PkiError::InvalidPem { what, detail })
}

/// Encodes DER as PEM with `label`, 64-character lines, LF endings.
#[cfg(test)]
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    // Only fails on an invalid label; ours are constants.
    rsa::pkcs8::der::pem::encode_string(label, rsa::pkcs8::LineEnding::LF, der).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input, labels wanted, then the label and bytes found or a piece of the error.
    type Case<'a> = (&'a str, &'a [&'a str], Result<(&'a str, &'a [u8]), &'a str>);

    // "hello" in base64 is aGVsbG8=
    #[test]
    fn finds_blocks_and_explains_misses() {
        let cases: &[Case] = &[
            (
                "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
                &["CERTIFICATE"],
                Ok(("CERTIFICATE", b"hello")),
            ),
            (
                "junk\r\n   -----BEGIN X-----\r\n  aGVs\r\n bG8=\r\n-----END X-----\r\n",
                &["X"],
                Ok(("X", b"hello")),
            ),
            (
                "-----BEGIN A-----\naGVsbG8=\n-----END A-----\n-----BEGIN B-----\naGVsbG8=\n-----END B-----\n",
                &["C", "B"],
                Ok(("B", b"hello")),
            ),
            ("no pem here", &["CERTIFICATE"], Err("no -----BEGIN CERTIFICATE----- block found")),
            (
                "-----BEGIN A-----\naGVsbG8=\n-----END A-----\n",
                &["B"],
                Err("found A block(s) but no -----BEGIN B-----"),
            ),
            (
                "-----BEGIN A-----\n!!!!\n-----END A-----\n",
                &["A"],
                Err("base64"),
            ),
            ("-----BEGIN A-----\naGVsbG8=\n", &["A"], Err("incomplete")),
        ];
        let encoded = encode("X", b"hello");
        assert_eq!(encoded, "-----BEGIN X-----\naGVsbG8=\n-----END X-----\n");
        for (input, labels, expected) in cases {
            let got = find_block(input, "thing", labels);
            match (expected, got) {
                (Ok((label, der)), Ok((l, d))) => {
                    assert_eq!(*label, l, "{input:?}");
                    assert_eq!(*der, d.as_slice(), "{input:?}");
                }
                (Err(msg), Err(e)) => {
                    let text = e.to_string();
                    assert!(text.starts_with("the thing is not valid PEM"), "{text}");
                    assert!(text.contains(msg), "{input:?}: {text}");
                }
                (want, got) => panic!("{input:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }
}
