//! rosbag2 sqlite3 storage files: `topics(id, name, type, serialization_format)` and
//! `messages(id, topic_id, timestamp, data)`, read row by row from a prepared
//! statement.

use super::{io_error, topic_index, BagError, BagMessage, Fault, MessageOrigin, TopicInfo, Window, SQLITE_FALLBACK_GROUP, SQLITE_MAGIC};
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::Path;

/// `file:` URI of a path for SQLite, with the characters URIs reserve escaped.
fn sqlite_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn sqlite_err(path: &Path, after_row: &str, e: rusqlite::Error) -> BagError {
    BagError::Sqlite { path: path.to_path_buf(), after_row: after_row.to_string(), detail: e.to_string() }
}

/// Opens the file read-only; sorts and temporary B-trees go to temporary files, so
/// `ORDER BY` over a table without an index does not grow memory with the bag.
///
/// `writable_schema` (the connection stays read-only) makes SQLite take a file
/// shorter than its header's page count as having the pages it has: without it a
/// truncated file is "malformed" as a whole, before its first row (a cut `.db3`
/// recovered nothing); with it the pages before the cut are read, and the first
/// missing one is the damage reported.
fn open(path: &Path) -> Result<Connection, BagError> {
    let mut head = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        let n = f.read(&mut head).map_err(|e| io_error(path, e))?;
        if n < 16 || &head != SQLITE_MAGIC {
            return Err(BagError::NotABag { path: path.to_path_buf(), detail: "no SQLite header at byte offset 0".into() });
        }
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(sqlite_uri(path), flags).map_err(|e| sqlite_err(path, "(none: cannot open)", e))?;
    conn.execute_batch("PRAGMA temp_store = FILE; PRAGMA writable_schema = ON;").map_err(|e| sqlite_err(path, "(none: cannot open)", e))?;
    Ok(conn)
}

/// The `topics` table: topic id → (name, type, serialization format).
fn topic_table(path: &Path, conn: &Connection) -> Result<BTreeMap<i64, (String, String, String)>, BagError> {
    let err = |e| sqlite_err(path, "(none: reading the topics table)", e);
    let mut stmt = conn.prepare("SELECT id, name, type, serialization_format FROM topics").map_err(err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, (r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))))
        .map_err(err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(err)
}

/// Adds the file's topics and their message counts to `topics`; the counts come from
/// a scan of `topic_id` in row order, so a damaged file counts the rows before the
/// damage (and reports it).
pub(super) fn list_topics(path: &Path, topics: &mut Vec<TopicInfo>) -> Result<(), BagError> {
    let conn = open(path)?;
    let mut index_of_id = BTreeMap::new();
    for (id, (name, type_name, encoding)) in topic_table(path, &conn)? {
        index_of_id.insert(id, topic_index(topics, &name, &type_name, &encoding));
    }
    let mut stmt =
        conn.prepare("SELECT id, topic_id FROM messages ORDER BY id").map_err(|e| sqlite_err(path, "(none: reading the messages table)", e))?;
    let mut rows = stmt.query([]).map_err(|e| sqlite_err(path, "(none)", e))?;
    let mut last_row = String::from("(none)");
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(()),
            Err(e) => return Err(sqlite_err(path, &last_row, e)),
        };
        let (id, topic_id): (i64, i64) = (|| Ok((row.get(0)?, row.get(1)?)))().map_err(|e| sqlite_err(path, &last_row, e))?;
        if let Some(&i) = index_of_id.get(&topic_id) {
            topics[i].message_count += 1;
        }
        last_row = id.to_string();
    }
}

/// Reads the rows of the wanted topics in `(timestamp, id)` order (falling back to id
/// order through the window when the ordered query fails before its first row).
pub(super) fn read_messages<E>(
    path: &Path,
    file: usize,
    topics: &[TopicInfo],
    wanted: &[bool],
    window: &mut Window,
    f: &mut impl FnMut(BagMessage) -> Result<(), E>,
) -> Result<(), Fault<E>> {
    let conn = open(path)?;
    let mut topic_of_id: BTreeMap<i64, usize> = BTreeMap::new();
    let mut wanted_ids = Vec::new();
    for (id, (name, _, _)) in topic_table(path, &conn)? {
        if let Some(i) = topics.iter().position(|t| t.name == name) {
            topic_of_id.insert(id, i);
            if wanted[i] {
                wanted_ids.push(id.to_string());
            }
        }
    }
    if wanted_ids.is_empty() {
        return Ok(());
    }
    let ids = wanted_ids.join(",");
    let mut reader = Rows { path, file, topic_of_id: &topic_of_id, last_row: String::from("(none)"), ordinal: 0 };
    let ordered = format!("SELECT id, topic_id, timestamp, data FROM messages WHERE topic_id IN ({ids}) ORDER BY timestamp, id");
    match reader.read(&conn, &ordered, 1, window, f) {
        Err(Fault::Bag(e)) if reader.ordinal == 0 => {
            // Damage found while sorting: read in file order up to it instead.
            let in_file_order = format!("SELECT id, topic_id, timestamp, data FROM messages WHERE topic_id IN ({ids}) ORDER BY id");
            match reader.read(&conn, &in_file_order, SQLITE_FALLBACK_GROUP, window, f) {
                Err(Fault::Bag(_)) | Ok(()) if reader.ordinal == 0 => Err(Fault::Bag(e)),
                other => other,
            }
        }
        other => other,
    }
}

struct Rows<'a> {
    path: &'a Path,
    file: usize,
    topic_of_id: &'a BTreeMap<i64, usize>,
    last_row: String,
    /// Rows delivered so far.
    ordinal: u64,
}

impl Rows<'_> {
    /// Delivers the rows of `sql` through `window`, ending a group every `group` rows
    /// (sorted rows use groups of one: each passes straight through).
    fn read<E>(
        &mut self,
        conn: &Connection,
        sql: &str,
        group: usize,
        window: &mut Window,
        f: &mut impl FnMut(BagMessage) -> Result<(), E>,
    ) -> Result<(), Fault<E>> {
        let path = self.path;
        let mut stmt = conn.prepare(sql).map_err(|e| sqlite_err(path, "(none: reading the messages table)", e))?;
        let mut rows = stmt.query([]).map_err(|e| sqlite_err(path, "(none)", e))?;
        let mut in_group = 0usize;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => return Ok(()),
                Err(e) => return Err(sqlite_err(path, &self.last_row, e).into()),
            };
            let read = (|| -> rusqlite::Result<(i64, i64, i64, Vec<u8>)> { Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)) })();
            let (id, topic_id, timestamp, data) = read.map_err(|e| sqlite_err(path, &self.last_row, e))?;
            let Some(&topic) = self.topic_of_id.get(&topic_id) else {
                return Err(BagError::Sqlite {
                    path: path.to_path_buf(),
                    after_row: self.last_row.clone(),
                    detail: format!("row {id} refers to topic id {topic_id}, which the topics table does not have"),
                }
                .into());
            };
            window.push(BagMessage {
                log_time_ns: timestamp.max(0) as u64,
                topic,
                data,
                origin: MessageOrigin { file: self.file, position: id as u64, ordinal: self.ordinal },
            });
            self.ordinal += 1;
            self.last_row = id.to_string();
            in_group += 1;
            if in_group >= group {
                in_group = 0;
                window.end_group(f).map_err(Fault::Callback)?;
            }
        }
    }
}
