//! Finds where a chunked body (RFC 9112 section 7.1) ends while its bytes are relayed as
//! they are: the web tier's chunked responses go to the client unchanged, and the gateway
//! only needs to know when the last one has passed, to reuse the backend connection.

/// Longest chunk-size accepted, in hex digits (16 fill a u64).
const MAX_SIZE_DIGITS: u32 = 16;
/// Longest line (a chunk-size line with extensions, or a trailer line) accepted.
const MAX_LINE: usize = 8 * 1024;

/// Where the scan is inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: the size so far, its digit count, whether extensions began.
    Size { size: u64, digits: u32, ext: bool },
    /// In a chunk's data: bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd { cr: bool },
    /// In the trailer section: whether the current line has any bytes yet.
    Trailer { line_has_bytes: bool },
    /// The body has ended.
    Done,
}

/// A chunked body that is not well formed.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// The scan of one chunked body.
#[derive(Debug)]
pub struct ChunkedScan {
    state: State,
    line: usize,
}

impl Default for ChunkedScan {
    fn default() -> Self {
        ChunkedScan {
            state: State::Size {
                size: 0,
                digits: 0,
                ext: false,
            },
            line: 0,
        }
    }
}

impl ChunkedScan {
    /// Feeds the next bytes of the body; `Some(n)` when the body ends after the first `n`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Malformed> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match &mut self.state {
                State::Done => return Ok(Some(i)),
                State::Data(left) => {
                    // Skip as much of the data as this piece holds.
                    let take = (*left).min((bytes.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.state = State::DataEnd { cr: false };
                    }
                    continue;
                }
                State::DataEnd { cr } => match b {
                    b'\r' if !*cr => *cr = true,
                    b'\n' => self.start_size_line(),
                    _ => return Err(Malformed("chunk data longer than its size")),
                },
                State::Size { size, digits, ext } => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(Malformed("chunk-size line too long"));
                    }
                    match b {
                        b'\n' => {
                            if *digits == 0 {
                                return Err(Malformed("chunk-size line without a size"));
                            }
                            self.state = if *size == 0 {
                                self.line = 0;
                                State::Trailer {
                                    line_has_bytes: false,
                                }
                            } else {
                                State::Data(*size)
                            };
                        }
                        _ if *ext => {}
                        b';' | b' ' | b'\t' | b'\r' => *ext = true,
                        _ => {
                            let Some(d) = (b as char).to_digit(16) else {
                                return Err(Malformed("chunk size is not hexadecimal"));
                            };
                            *digits += 1;
                            if *digits > MAX_SIZE_DIGITS {
                                return Err(Malformed("chunk size too large"));
                            }
                            *size = *size << 4 | u64::from(d);
                        }
                    }
                }
                State::Trailer { line_has_bytes } => match b {
                    b'\n' if !*line_has_bytes => {
                        self.state = State::Done;
                        return Ok(Some(i + 1));
                    }
                    b'\n' => {
                        *line_has_bytes = false;
                        self.line = 0;
                    }
                    b'\r' if !*line_has_bytes => {}
                    _ => {
                        *line_has_bytes = true;
                        self.line += 1;
                        if self.line > MAX_LINE {
                            return Err(Malformed("trailer line too long"));
                        }
                    }
                },
            }
            i += 1;
        }
        Ok((self.state == State::Done).then_some(bytes.len()))
    }

    fn start_size_line(&mut self) {
        self.line = 0;
        self.state = State::Size {
            size: 0,
            digits: 0,
            ext: false,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in pieces of `step` bytes; the offset where it ended, if it did.
    fn end_of(body: &[u8], step: usize) -> Result<Option<usize>, Malformed> {
        let mut scan = ChunkedScan::default();
        let mut at = 0;
        for piece in body.chunks(step) {
            if let Some(n) = scan.feed(piece)? {
                return Ok(Some(at + n));
            }
            at += piece.len();
        }
        Ok(None)
    }

    #[test]
    fn finds_the_end_in_any_split() {
        let body = b"5\r\nalpha\r\n6;ext=1\r\n-beta-\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let end = body.len() - 4;
        for step in 1..=body.len() {
            assert_eq!(end_of(body, step), Ok(Some(end)), "step {step}");
        }
        assert_eq!(end_of(b"0\r\n\r\n", 1), Ok(Some(5)));
        assert_eq!(end_of(b"A\r\n0123456789\r\n0\r\n\r\n", 3), Ok(Some(20)));
        assert_eq!(end_of(b"5\r\nalp", 2), Ok(None));
    }

    #[test]
    fn refuses_broken_framing() {
        for bad in [
            &b"\r\n"[..],
            b"zz\r\n",
            b"5\r\nalphaXX\r\n",
            b"11111111111111111\r\n",
        ] {
            assert!(
                end_of(bad, 1).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"1;".as_slice(), &[b'x'; MAX_LINE]].concat();
        assert!(end_of(&long, 64).is_err());
    }
}
