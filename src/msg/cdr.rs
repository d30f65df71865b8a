//! ROS 2 CDR (XCDR1, "plain CDR") reading and writing, by hand and bounds-checked.
//!
//! A serialized ROS 2 message is a 4-byte encapsulation header (`00 00` = big endian,
//! `00 01` = little endian, then two option bytes) followed by the fields in
//! declaration order. A primitive of size n (1, 2, 4 or 8 bytes) starts at an offset,
//! counted from the end of the encapsulation header, that is a multiple of n. A string
//! is a `uint32` length that counts the terminating NUL, the bytes, then the NUL; a
//! sequence is a `uint32` element count followed by the elements; fixed arrays have no
//! count. Every read checks the remaining length, so bad data is an error, never a
//! panic or an unbounded allocation.

/// Why a CDR buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CdrError {
    #[error("buffer of {len} bytes is shorter than the 4-byte encapsulation header")]
    NoHeader { len: usize },
    #[error("unsupported encapsulation {0:#06x} (only plain CDR, 0x0000 big endian or 0x0001 little endian)")]
    Encapsulation(u16),
    #[error("field `{field}` needs {needed} bytes at offset {offset} but only {available} remain")]
    Truncated { field: &'static str, offset: usize, needed: usize, available: usize },
    #[error("string `{field}` at offset {offset} has length {len}, which does not end in a NUL byte")]
    StringNotTerminated { field: &'static str, offset: usize, len: u32 },
    #[error("string `{field}` at offset {offset} is not UTF-8")]
    StringNotUtf8 { field: &'static str, offset: usize },
    #[error("sequence `{field}` at offset {offset} claims {count} elements of at least {min_size} bytes but only {available} bytes remain")]
    SequenceTooLong { field: &'static str, offset: usize, count: u32, min_size: usize, available: usize },
}

/// Reads the fields of one CDR message in order.
#[derive(Debug, Clone)]
pub struct CdrReader<'a> {
    /// The bytes after the encapsulation header.
    body: &'a [u8],
    /// Read position within `body`.
    pos: usize,
    little_endian: bool,
}

impl<'a> CdrReader<'a> {
    /// Starts reading a serialized message (encapsulation header included).
    ///
    /// # Errors
    /// [`CdrError::NoHeader`] or [`CdrError::Encapsulation`].
    pub fn new(data: &'a [u8]) -> Result<Self, CdrError> {
        if data.len() < 4 {
            return Err(CdrError::NoHeader { len: data.len() });
        }
        let kind = u16::from_be_bytes([data[0], data[1]]);
        let little_endian = match kind {
            0x0000 => false,
            0x0001 => true,
            other => return Err(CdrError::Encapsulation(other)),
        };
        Ok(Self { body: &data[4..], pos: 0, little_endian })
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    /// Offset of the next read, counted from the end of the encapsulation header.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, field: &'static str, align: usize, n: usize) -> Result<&'a [u8], CdrError> {
        let start = self.pos.div_ceil(align) * align;
        let available = self.body.len().saturating_sub(start);
        if start > self.body.len() || n > available {
            return Err(CdrError::Truncated { field, offset: start, needed: n, available });
        }
        self.pos = start + n;
        Ok(&self.body[start..start + n])
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CdrError> {
        let bytes = self.take(field, N, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        if self.little_endian != cfg!(target_endian = "little") {
            out.reverse();
        }
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, CdrError> {
        Ok(self.take(field, 1, 1)?[0])
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, CdrError> {
        Ok(self.u8(field)? != 0)
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, CdrError> {
        Ok(u32::from_ne_bytes(self.array(field)?))
    }

    pub fn i32(&mut self, field: &'static str) -> Result<i32, CdrError> {
        Ok(i32::from_ne_bytes(self.array(field)?))
    }

    pub fn f32(&mut self, field: &'static str) -> Result<f32, CdrError> {
        Ok(f32::from_ne_bytes(self.array(field)?))
    }

    pub fn f64(&mut self, field: &'static str) -> Result<f64, CdrError> {
        Ok(f64::from_ne_bytes(self.array(field)?))
    }

    /// A fixed-size `float64[N]` array.
    pub fn f64_array<const N: usize>(&mut self, field: &'static str) -> Result<[f64; N], CdrError> {
        let mut out = [0.0; N];
        for v in &mut out {
            *v = self.f64(field)?;
        }
        Ok(out)
    }

    /// A `string` (length with NUL, bytes, NUL).
    pub fn string(&mut self, field: &'static str) -> Result<String, CdrError> {
        let len = self.u32(field)?;
        let offset = self.pos;
        if len == 0 {
            // Some writers encode "" as length 0 without the NUL.
            return Ok(String::new());
        }
        let bytes = self.take(field, 1, len as usize)?;
        let (last, text) = bytes.split_last().expect("len > 0");
        if *last != 0 {
            return Err(CdrError::StringNotTerminated { field, offset, len });
        }
        std::str::from_utf8(text).map(str::to_string).map_err(|_| CdrError::StringNotUtf8 { field, offset })
    }

    /// The element count of a sequence whose elements take at least `min_size` bytes
    /// each, checked against the bytes that remain.
    pub fn sequence_len(&mut self, field: &'static str, min_size: usize) -> Result<usize, CdrError> {
        let count = self.u32(field)?;
        let available = self.remaining();
        if (count as usize).saturating_mul(min_size.max(1)) > available {
            return Err(CdrError::SequenceTooLong { field, offset: self.pos, count, min_size, available });
        }
        Ok(count as usize)
    }
}

/// Writes one little-endian CDR message (encapsulation `00 01 00 00`).
#[derive(Debug, Clone)]
pub struct CdrWriter {
    buf: Vec<u8>,
}

impl Default for CdrWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CdrWriter {
    pub fn new() -> Self {
        Self { buf: vec![0x00, 0x01, 0x00, 0x00] }
    }

    fn align(&mut self, n: usize) {
        let pos = self.buf.len() - 4;
        let pad = pos.div_ceil(n) * n - pos;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f32(&mut self, v: f32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64_slice(&mut self, values: &[f64]) {
        for v in values {
            self.f64(*v);
        }
    }

    /// A string: length including the NUL, the bytes, the NUL.
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// The serialized message, encapsulation header included.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// One field order for both directions, so that decoding and encoding cannot drift
/// apart: a message lists its fields once, in declaration order
/// ([`CdrMessage::fields`]); [`CdrReader`] fills them, [`CdrWriter`] writes them.
pub trait CdrFields {
    fn u8(&mut self, field: &'static str, v: &mut u8) -> Result<(), CdrError>;
    fn bool(&mut self, field: &'static str, v: &mut bool) -> Result<(), CdrError>;
    fn u32(&mut self, field: &'static str, v: &mut u32) -> Result<(), CdrError>;
    fn i32(&mut self, field: &'static str, v: &mut i32) -> Result<(), CdrError>;
    fn f32(&mut self, field: &'static str, v: &mut f32) -> Result<(), CdrError>;
    fn f64(&mut self, field: &'static str, v: &mut f64) -> Result<(), CdrError>;
    /// A fixed-size `float64[N]` array (no count).
    fn f64s(&mut self, field: &'static str, v: &mut [f64]) -> Result<(), CdrError> {
        v.iter_mut().try_for_each(|x| self.f64(field, x))
    }
    fn string(&mut self, field: &'static str, v: &mut String) -> Result<(), CdrError>;
    /// A sequence of elements of at least `min_size` bytes each: its `uint32` count,
    /// then `element` on each of `v` (resized to the count read when decoding).
    fn sequence<T: Default>(
        &mut self,
        field: &'static str,
        v: &mut Vec<T>,
        min_size: usize,
        element: impl FnMut(&mut Self, &mut T) -> Result<(), CdrError>,
    ) -> Result<(), CdrError>
    where
        Self: Sized;
    /// A trailing `float32` that older distributions do not have: decodes to 0 when
    /// no bytes remain.
    fn trailing_f32(&mut self, field: &'static str, v: &mut f32) -> Result<(), CdrError>;
}

impl CdrFields for CdrReader<'_> {
    fn u8(&mut self, field: &'static str, v: &mut u8) -> Result<(), CdrError> {
        *v = CdrReader::u8(self, field)?;
        Ok(())
    }
    fn bool(&mut self, field: &'static str, v: &mut bool) -> Result<(), CdrError> {
        *v = CdrReader::bool(self, field)?;
        Ok(())
    }
    fn u32(&mut self, field: &'static str, v: &mut u32) -> Result<(), CdrError> {
        *v = CdrReader::u32(self, field)?;
        Ok(())
    }
    fn i32(&mut self, field: &'static str, v: &mut i32) -> Result<(), CdrError> {
        *v = CdrReader::i32(self, field)?;
        Ok(())
    }
    fn f32(&mut self, field: &'static str, v: &mut f32) -> Result<(), CdrError> {
        *v = CdrReader::f32(self, field)?;
        Ok(())
    }
    fn f64(&mut self, field: &'static str, v: &mut f64) -> Result<(), CdrError> {
        *v = CdrReader::f64(self, field)?;
        Ok(())
    }
    fn string(&mut self, field: &'static str, v: &mut String) -> Result<(), CdrError> {
        *v = CdrReader::string(self, field)?;
        Ok(())
    }
    fn sequence<T: Default>(
        &mut self,
        field: &'static str,
        v: &mut Vec<T>,
        min_size: usize,
        mut element: impl FnMut(&mut Self, &mut T) -> Result<(), CdrError>,
    ) -> Result<(), CdrError> {
        let n = self.sequence_len(field, min_size)?;
        v.clear();
        v.resize_with(n, T::default);
        v.iter_mut().try_for_each(|x| element(self, x))
    }
    fn trailing_f32(&mut self, field: &'static str, v: &mut f32) -> Result<(), CdrError> {
        *v = if self.remaining() >= 4 { CdrReader::f32(self, field)? } else { 0.0 };
        Ok(())
    }
}

impl CdrFields for CdrWriter {
    fn u8(&mut self, _: &'static str, v: &mut u8) -> Result<(), CdrError> {
        CdrWriter::u8(self, *v);
        Ok(())
    }
    fn bool(&mut self, _: &'static str, v: &mut bool) -> Result<(), CdrError> {
        CdrWriter::bool(self, *v);
        Ok(())
    }
    fn u32(&mut self, _: &'static str, v: &mut u32) -> Result<(), CdrError> {
        CdrWriter::u32(self, *v);
        Ok(())
    }
    fn i32(&mut self, _: &'static str, v: &mut i32) -> Result<(), CdrError> {
        CdrWriter::i32(self, *v);
        Ok(())
    }
    fn f32(&mut self, _: &'static str, v: &mut f32) -> Result<(), CdrError> {
        CdrWriter::f32(self, *v);
        Ok(())
    }
    fn f64(&mut self, _: &'static str, v: &mut f64) -> Result<(), CdrError> {
        CdrWriter::f64(self, *v);
        Ok(())
    }
    fn string(&mut self, _: &'static str, v: &mut String) -> Result<(), CdrError> {
        CdrWriter::string(self, v);
        Ok(())
    }
    fn sequence<T: Default>(
        &mut self,
        _: &'static str,
        v: &mut Vec<T>,
        _: usize,
        mut element: impl FnMut(&mut Self, &mut T) -> Result<(), CdrError>,
    ) -> Result<(), CdrError> {
        CdrWriter::u32(self, v.len() as u32);
        v.iter_mut().try_for_each(|x| element(self, x))
    }
    fn trailing_f32(&mut self, _: &'static str, v: &mut f32) -> Result<(), CdrError> {
        CdrWriter::f32(self, *v);
        Ok(())
    }
}

/// A message with a CDR encoding, defined once by [`CdrMessage::fields`].
pub trait CdrMessage: Default + Clone {
    /// Visits every field in declaration order (see [`CdrFields`]).
    ///
    /// # Errors
    /// [`CdrError`] naming the field that does not fit (decoding only).
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError>;

    /// Decodes a serialized message (encapsulation header included).
    ///
    /// # Errors
    /// [`CdrError`] naming the field that does not fit.
    fn decode(data: &[u8]) -> Result<Self, CdrError> {
        let mut reader = CdrReader::new(data)?;
        let mut m = Self::default();
        m.fields(&mut reader)?;
        Ok(m)
    }

    /// Little-endian CDR, consuming the message (no copy; what the replayer writes).
    fn into_cdr(mut self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        // Writing has no failure path (every CdrWriter method returns Ok).
        let _ = self.fields(&mut w);
        w.into_bytes()
    }

    /// Little-endian CDR of a copy ([`CdrMessage::into_cdr`]).
    fn encode(&self) -> Vec<u8> {
        self.clone().into_cdr()
    }
}
