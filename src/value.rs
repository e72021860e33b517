//! User data values: strings and files, as stored under a data id (contract sections 2, 7).

use bytes::Bytes;

/// One stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A text value (valid UTF-8, no NUL).
    Text(String),
    /// A file from a multipart part with a filename.
    File(FileValue),
}

/// A file's bytes and what the client said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileValue {
    /// The part's filename.
    pub filename: String,
    /// The part's content type (`application/octet-stream` when it gave none).
    pub content_type: String,
    /// The file's bytes.
    pub bytes: Bytes,
}

/// Key/value pairs in the order they arrived; a key appears once.
pub type Fields = Vec<(String, Value)>;

/// Merges `new` into `fields`: a key present in both takes the new value.
pub fn merge_fields(fields: &mut Fields, new: Fields) {
    for (k, v) in new {
        match fields.iter_mut().find(|(old, _)| *old == k) {
            Some(slot) => slot.1 = v,
            None => fields.push((k, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_and_appends_in_order() {
        let mut f = vec![
            ("a".into(), Value::Text("1".into())),
            ("b".into(), Value::Text("2".into())),
        ];
        merge_fields(
            &mut f,
            vec![
                ("b".into(), Value::Text("3".into())),
                ("c".into(), Value::Text("4".into())),
            ],
        );
        let keys: Vec<_> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(f[1].1, Value::Text("3".into()));
    }
}
