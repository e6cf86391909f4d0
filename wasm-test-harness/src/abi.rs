//! The proxy-wasm ABI v0.2.1 as the host sees it: the enum values (taken from the `proxy-wasm`
//! crate, so they are not re-typed here), the wire format of header maps, and property paths.

pub use proxy_wasm::types::{Action, BufferType, LogLevel, MapType, MetricType, Status};

/// Wasm passes every `u32`/`usize` of the ABI as an `i32`; the host reads them back unsigned.
pub fn unsigned(value: i32) -> u32 {
    value as u32
}

pub fn log_level(value: u32) -> Option<LogLevel> {
    Some(match value {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        2 => LogLevel::Info,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        5 => LogLevel::Critical,
        _ => return None,
    })
}

/// The header maps a stream has. gRPC and HTTP-call maps exist only around dispatched calls,
/// which this harness does not make, so they are "not found" like in Envoy outside such calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMap {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
}

impl StreamMap {
    pub fn from_abi(value: u32) -> Option<StreamMap> {
        Some(match value {
            v if v == MapType::HttpRequestHeaders as u32 => StreamMap::RequestHeaders,
            v if v == MapType::HttpRequestTrailers as u32 => StreamMap::RequestTrailers,
            v if v == MapType::HttpResponseHeaders as u32 => StreamMap::ResponseHeaders,
            v if v == MapType::HttpResponseTrailers as u32 => StreamMap::ResponseTrailers,
            _ => return None,
        })
    }
}

pub fn buffer_type(value: u32) -> Option<BufferType> {
    [
        BufferType::HttpRequestBody,
        BufferType::HttpResponseBody,
        BufferType::DownstreamData,
        BufferType::UpstreamData,
        BufferType::HttpCallResponseBody,
        BufferType::GrpcReceiveBuffer,
        BufferType::VmConfiguration,
        BufferType::PluginConfiguration,
        BufferType::CallData,
    ]
    .into_iter()
    .find(|t| *t as u32 == value)
}

pub fn metric_type(value: u32) -> Option<MetricType> {
    [MetricType::Counter, MetricType::Gauge, MetricType::Histogram].into_iter().find(|t| *t as u32 == value)
}

/// A header map (or any list of pairs) with byte keys and values, in order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The ABI's map encoding: the pair count, then each key size and value size (all `u32`,
/// little endian), then each key and each value followed by a NUL.
pub fn serialize_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let sizes = 4 + pairs.len() * 8;
    let data: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(sizes + data);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// Reads the encoding `serialize_pairs` writes. The bytes come from the module, so every size
/// is checked: a malformed map is an `Err` describing what is wrong, never a panic.
pub fn deserialize_pairs(bytes: &[u8]) -> Result<Pairs, String> {
    if bytes.is_empty() {
        // Envoy reads an empty buffer as an empty map (the SDK sends one for "no headers").
        return Ok(Vec::new());
    }
    let mut reader = Reader { bytes, at: 0 };
    let count = reader.u32()? as usize;
    // Each pair needs at least 8 size bytes and 2 NULs: bound the count before allocating.
    if count > bytes.len() / 10 {
        return Err(format!("map claims {count} pairs in {} bytes", bytes.len()));
    }
    let mut sizes = Vec::with_capacity(count);
    for _ in 0..count {
        sizes.push((reader.u32()? as usize, reader.u32()? as usize));
    }
    let mut pairs = Vec::with_capacity(count);
    for (key_size, value_size) in sizes {
        let key = reader.terminated(key_size)?;
        let value = reader.terminated(value_size)?;
        pairs.push((key, value));
    }
    if reader.at != bytes.len() {
        return Err(format!("{} bytes after the last pair", bytes.len() - reader.at));
    }
    Ok(pairs)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("map ends at byte {} but needs {n} more", self.bytes.len()))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn terminated(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let value = self.take(n)?.to_vec();
        match self.take(1)? {
            [0] => Ok(value),
            _ => Err(format!("a map entry of {n} bytes is not followed by NUL")),
        }
    }
}

/// A property path as the module sends it: each segment followed by NUL
/// (`connection\0requested_server_name\0`).
pub fn property_path<S: AsRef<[u8]>>(segments: &[S]) -> Vec<u8> {
    let mut path = Vec::new();
    for segment in segments {
        path.extend_from_slice(segment.as_ref());
        path.push(0);
    }
    path
}

/// A property path for messages: `connection.requested_server_name`.
pub fn show_path(path: &[u8]) -> String {
    let trimmed = path.strip_suffix(&[0]).unwrap_or(path);
    trimmed.split(|&b| b == 0).map(String::from_utf8_lossy).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![(b":status".to_vec(), b"421".to_vec()), (b"x".to_vec(), vec![0xff, 0])];
        assert_eq!(deserialize_pairs(&serialize_pairs(&pairs)).unwrap(), pairs);
        assert_eq!(deserialize_pairs(&serialize_pairs(&[])).unwrap(), vec![]);
        assert_eq!(deserialize_pairs(&[]).unwrap(), vec![]);
    }

    #[test]
    fn malformed_maps_are_errors() {
        let good = serialize_pairs(&[(b"k".to_vec(), b"v".to_vec())]);
        for cut in 1..good.len() {
            assert!(deserialize_pairs(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut no_nul = good.clone();
        no_nul[13] = b'x';
        assert!(deserialize_pairs(&no_nul).is_err());
        assert!(deserialize_pairs(&u32::MAX.to_le_bytes()).is_err());
        let mut trailing = good;
        trailing.push(1);
        assert!(deserialize_pairs(&trailing).is_err());
    }

    #[test]
    fn paths_have_nul_after_each_segment() {
        let path = property_path(&["connection", "requested_server_name"]);
        assert_eq!(path, b"connection\0requested_server_name\0");
        assert_eq!(show_path(&path), "connection.requested_server_name");
        assert_eq!(buffer_type(7), Some(BufferType::PluginConfiguration));
        assert_eq!(metric_type(3), None);
        assert_eq!(StreamMap::from_abi(2), Some(StreamMap::ResponseHeaders));
    }
}
