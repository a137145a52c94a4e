//! A decoder for the Universal Binary JSON that XGBoost's `save_model("*.ubj")`
//! writes, producing the same [`serde_json::Value`] tree as the JSON format so
//! one reader handles both.
//!
//! XGBoost writes objects with `L`-length keys, scalars as `L`/`l`/`i`/`U`/`d`/`D`,
//! strings as `S`, and its numeric arrays as optimized typed containers
//! (`[$d#L<count>` followed by big-endian values). The decoder accepts the whole
//! UBJSON draft-12 value grammar, checks every length against the bytes left
//! (a corrupt count never allocates gigabytes) and limits nesting depth.

use serde_json::{Map, Number, Value};

use crate::scoring::model::{ModelError, ModelResult};

/// Deeper nesting than this is treated as corruption (XGBoost models nest < 10 levels).
const MAX_DEPTH: usize = 64;

/// Decodes one UBJSON value from `bytes`.
pub fn decode(file: &str, bytes: &[u8]) -> ModelResult<Value> {
    let mut reader = Reader {
        file,
        bytes,
        pos: 0,
    };
    let marker = reader.byte()?;
    let value = reader.value(marker, 0)?;
    Ok(value)
}

struct Reader<'a> {
    file: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, reason: impl Into<String>) -> ModelError {
        ModelError::Malformed {
            file: self.file.to_string(),
            format: "UBJSON",
            reason: format!("{} (at byte {})", reason.into(), self.pos),
        }
    }

    fn take(&mut self, n: usize) -> ModelResult<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("unexpected end of file (truncated?)"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> ModelResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> ModelResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An integer introduced by `marker` (used for lengths and counts).
    fn integer(&mut self, marker: u8) -> ModelResult<i64> {
        Ok(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.array()?)),
            b'U' => i64::from(u8::from_be_bytes(self.array()?)),
            b'I' => i64::from(i16::from_be_bytes(self.array()?)),
            b'l' => i64::from(i32::from_be_bytes(self.array()?)),
            b'L' => i64::from_be_bytes(self.array()?),
            other => {
                return Err(self.error(format!(
                    "expected an integer marker, found {:?}",
                    other as char
                )));
            }
        })
    }

    fn length(&mut self) -> ModelResult<usize> {
        let marker = self.byte()?;
        let n = self.integer(marker)?;
        usize::try_from(n).map_err(|_| self.error(format!("negative length {n}")))
    }

    fn string(&mut self) -> ModelResult<String> {
        let n = self.length()?;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.error("a string is not valid UTF-8"))
    }

    fn float(&self, x: f64) -> Value {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }

    fn value(&mut self, marker: u8, depth: usize) -> ModelResult<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.integer(marker)?),
            b'd' => {
                let x = f32::from_be_bytes(self.array()?);
                self.float(f64::from(x))
            }
            b'D' => {
                let x = f64::from_be_bytes(self.array()?);
                self.float(x)
            }
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            b'S' | b'H' => Value::String(self.string()?),
            b'[' => self.list(depth)?,
            b'{' => self.object(depth)?,
            b'N' => {
                // No-op padding: skip it (iteratively, so a run of them cannot recurse).
                let mut next = self.byte()?;
                while next == b'N' {
                    next = self.byte()?;
                }
                self.value(next, depth + 1)?
            }
            other => return Err(self.error(format!("unknown value marker {:?}", other as char))),
        })
    }

    /// Reads the optional `$type` and `#count` of a container.
    fn container_header(&mut self) -> ModelResult<(Option<u8>, Option<usize>)> {
        let mut element = None;
        let mut count = None;
        if self.bytes.get(self.pos) == Some(&b'$') {
            self.pos += 1;
            element = Some(self.byte()?);
        }
        if self.bytes.get(self.pos) == Some(&b'#') {
            self.pos += 1;
            count = Some(self.length()?);
        } else if element.is_some() {
            return Err(self.error("a typed container without a count"));
        }
        Ok((element, count))
    }

    fn list(&mut self, depth: usize) -> ModelResult<Value> {
        let (element, count) = self.container_header()?;
        match (element, count) {
            (Some(marker), Some(n)) => {
                let width = match marker {
                    b'i' | b'U' | b'C' => 1,
                    b'I' => 2,
                    b'l' | b'd' => 4,
                    b'L' | b'D' => 8,
                    _ => 1,
                };
                if n.saturating_mul(width) > self.bytes.len() - self.pos {
                    return Err(self.error(format!(
                        "an array claims {n} elements, more than the file holds"
                    )));
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(marker, depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            (None, Some(n)) => {
                if n > self.bytes.len() - self.pos {
                    return Err(self.error(format!(
                        "an array claims {n} elements, more than the file holds"
                    )));
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let marker = self.byte()?;
                    items.push(self.value(marker, depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            _ => {
                let mut items = Vec::new();
                loop {
                    let marker = self.byte()?;
                    if marker == b']' {
                        break;
                    }
                    items.push(self.value(marker, depth + 1)?);
                }
                Ok(Value::Array(items))
            }
        }
    }

    fn object(&mut self, depth: usize) -> ModelResult<Value> {
        let (element, count) = self.container_header()?;
        let mut map = Map::new();
        match count {
            Some(n) => {
                if n > self.bytes.len() - self.pos {
                    return Err(self.error(format!(
                        "an object claims {n} fields, more than the file holds"
                    )));
                }
                for _ in 0..n {
                    let key = self.string()?;
                    let marker = match element {
                        Some(m) => m,
                        None => self.byte()?,
                    };
                    map.insert(key, self.value(marker, depth + 1)?);
                }
            }
            None => loop {
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    break;
                }
                let key = self.string()?;
                let marker = self.byte()?;
                map.insert(key, self.value(marker, depth + 1)?);
            },
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(out: &mut Vec<u8>, k: &str) {
        out.push(b'L');
        out.extend((k.len() as i64).to_be_bytes());
        out.extend(k.as_bytes());
    }

    #[test]
    fn decodes_xgboost_style_objects_and_typed_arrays() {
        let mut b = vec![b'{'];
        key(&mut b, "n");
        b.push(b'L');
        b.extend(7i64.to_be_bytes());
        key(&mut b, "v");
        b.extend(b"[$d#L");
        b.extend(2i64.to_be_bytes());
        b.extend(0.5f32.to_be_bytes());
        b.extend((-1.25f32).to_be_bytes());
        key(&mut b, "s");
        b.push(b'S');
        b.push(b'i');
        b.push(2);
        b.extend(b"ok");
        b.push(b'}');
        let v = decode("m.ubj", &b).unwrap();
        assert_eq!(v, serde_json::json!({"n": 7, "v": [0.5, -1.25], "s": "ok"}));
    }

    #[test]
    fn truncation_and_absurd_counts_are_errors() {
        assert!(decode("m.ubj", b"{L").is_err());
        let mut b = b"[$d#L".to_vec();
        b.extend(i64::MAX.to_be_bytes());
        let err = decode("m.ubj", &b).unwrap_err().to_string();
        assert!(err.contains("m.ubj") && err.contains("claims"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let b = vec![b'['; 100_000];
        assert!(decode("m.ubj", &b).is_err());
    }
}
