//! Streaming reads of large JSON lists (`kubectl get pods -A -o json` on a big cluster is
//! gigabytes): the top-level `items` array is split into its elements while the file is read in
//! chunks, and the elements are parsed on worker threads. Memory stays bounded by a few batches
//! plus the parsed (slim) items, and every core parses.

use std::io::Read;
use std::sync::mpsc;

use super::parse::Item;

/// Bytes of raw items handed to a worker at once.
const BATCH_BYTES: usize = 4 << 20;
const CHUNK_BYTES: usize = 4 << 20;

#[derive(Debug)]
pub enum StreamError {
    /// The file could not be read.
    Io(std::io::Error),
    /// An item did not parse: its bytes, and where it is (its index in `items`, the line and
    /// column of the file it starts at), for the caller to say why.
    Json { item: Vec<u8>, at: Item },
    /// Not a top-level object whose `items` holds objects: read the file whole instead.
    Unsupported,
}

struct Batch {
    index: usize,
    bytes: Vec<u8>,
    /// Each item of `bytes`.
    items: Vec<Span>,
}

/// Where an item is: in its batch's bytes, and in the file.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Its index in the list's `items`.
    index: usize,
    line: usize,
    column: usize,
}

#[derive(PartialEq)]
enum Mode {
    Skeleton,
    BetweenItems,
    InItem,
}

/// Splits `reader`'s items, parses them with `parse` on `workers` threads, and hands each to
/// `sink` in file order as soon as it and everything before it is parsed. Returns the skeleton:
/// the file without its items (`"items": []`).
pub fn split_items<T, R>(
    mut reader: R,
    parse: fn(&[u8]) -> Result<T, serde_json::Error>,
    workers: usize,
    sink: &mut dyn FnMut(T),
) -> Result<Vec<u8>, StreamError>
where
    T: Send,
    R: Read,
{
    std::thread::scope(|scope| {
        let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(workers * 2);
        let batch_rx = std::sync::Arc::new(std::sync::Mutex::new(batch_rx));
        let (result_tx, result_rx) = mpsc::channel::<Result<(usize, Vec<T>), StreamError>>();
        for _ in 0..workers.max(1) {
            let batch_rx = batch_rx.clone();
            let result_tx = result_tx.clone();
            scope.spawn(move || {
                loop {
                    let batch = match batch_rx.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = batch else { return };
                    let mut parsed = Vec::with_capacity(batch.items.len());
                    let mut failure = None;
                    for span in &batch.items {
                        let bytes = &batch.bytes[span.start..span.end];
                        match parse(bytes) {
                            Ok(item) => parsed.push(item),
                            Err(_) => {
                                failure = Some(StreamError::Json {
                                    item: bytes.to_vec(),
                                    at: Item {
                                        index: span.index,
                                        line: span.line,
                                        column: span.column,
                                    },
                                });
                                break;
                            }
                        }
                    }
                    let _ = result_tx.send(match failure {
                        Some(error) => Err(error),
                        None => Ok((batch.index, parsed)),
                    });
                }
            });
        }
        drop(result_tx);
        let mut order = InOrder {
            next: 0,
            waiting: std::collections::BTreeMap::new(),
            error: None,
        };
        let scanned = scan(&mut reader, &batch_tx, &mut || {
            while let Ok(result) = result_rx.try_recv() {
                order.accept(result, sink);
            }
        });
        drop(batch_tx);
        for result in result_rx {
            order.accept(result, sink);
        }
        let skeleton = scanned?;
        match order.error {
            Some(error) => Err(error),
            None => Ok(skeleton),
        }
    })
}

/// Releases parsed batches in file order.
struct InOrder<T> {
    next: usize,
    waiting: std::collections::BTreeMap<usize, Vec<T>>,
    error: Option<StreamError>,
}

impl<T> InOrder<T> {
    fn accept(&mut self, result: Result<(usize, Vec<T>), StreamError>, sink: &mut dyn FnMut(T)) {
        match result {
            Err(error) => {
                self.error.get_or_insert(error);
            }
            Ok((index, items)) => {
                self.waiting.insert(index, items);
                while let Some(items) = self.waiting.remove(&self.next) {
                    if self.error.is_none() {
                        items.into_iter().for_each(&mut *sink);
                    }
                    self.next += 1;
                }
            }
        }
    }
}

/// The scanner's position in the document.
struct Scanner {
    mode: Mode,
    skeleton: Vec<u8>,
    /// Nesting of the skeleton outside the items (the top-level object is depth 1).
    depth: usize,
    /// Brace nesting inside the current item; brackets need no tracking to find its end.
    item_braces: usize,
    in_string: bool,
    escaped: bool,
    expect_key: bool,
    in_key: bool,
    key: Vec<u8>,
    last_key: Vec<u8>,
    /// Newlines before the start of the current chunk, and the chunk offset they were counted to.
    lines: usize,
    counted_to: usize,
    last_newline: Option<usize>,
}

/// Reads everything, sending item batches; returns the skeleton. Inside items only `"`, `\`,
/// `{` and `}` matter, so the scanner jumps between them with `memchr` instead of visiting every
/// byte.
fn scan<R: Read>(
    reader: &mut R,
    batches: &mpsc::SyncSender<Batch>,
    between_chunks: &mut dyn FnMut(),
) -> Result<Vec<u8>, StreamError> {
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut s = Scanner {
        mode: Mode::Skeleton,
        skeleton: Vec::new(),
        depth: 0,
        item_braces: 0,
        in_string: false,
        escaped: false,
        expect_key: false,
        in_key: false,
        key: Vec::new(),
        last_key: Vec::new(),
        lines: 0,
        counted_to: 0,
        last_newline: None,
    };
    let new_batch = |index| Batch {
        index,
        bytes: Vec::with_capacity(BATCH_BYTES + (1 << 20)),
        items: Vec::new(),
    };
    let mut batch = new_batch(0);
    let (mut item_start, mut item_line, mut item_column) = (0usize, 0usize, 0usize);
    let mut items_seen = 0usize;
    loop {
        between_chunks();
        let read = reader.read(&mut chunk).map_err(StreamError::Io)?;
        if read == 0 {
            break;
        }
        let data = &chunk[..read];
        s.counted_to = 0;
        s.last_newline = None;
        let mut copy_from = 0;
        let mut at = 0;
        while at < data.len() {
            match s.mode {
                Mode::InItem => {
                    if s.in_string {
                        if s.escaped {
                            s.escaped = false;
                            at += 1;
                            continue;
                        }
                        match memchr::memchr2(b'"', b'\\', &data[at..]) {
                            None => at = data.len(),
                            Some(found) => {
                                at += found;
                                if data[at] == b'\\' {
                                    s.escaped = true;
                                } else {
                                    s.in_string = false;
                                }
                                at += 1;
                            }
                        }
                        continue;
                    }
                    match memchr::memchr3(b'"', b'{', b'}', &data[at..]) {
                        None => at = data.len(),
                        Some(found) => {
                            at += found;
                            match data[at] {
                                b'"' => s.in_string = true,
                                b'{' => s.item_braces += 1,
                                _ => {
                                    s.item_braces -= 1;
                                    if s.item_braces == 0 {
                                        batch.bytes.extend_from_slice(&data[copy_from..=at]);
                                        batch.items.push(Span {
                                            start: item_start,
                                            end: batch.bytes.len(),
                                            index: items_seen,
                                            line: item_line,
                                            column: item_column,
                                        });
                                        items_seen += 1;
                                        s.mode = Mode::BetweenItems;
                                        if batch.bytes.len() >= BATCH_BYTES {
                                            let next = new_batch(batch.index + 1);
                                            if batches
                                                .send(std::mem::replace(&mut batch, next))
                                                .is_err()
                                            {
                                                return Err(StreamError::Unsupported);
                                            }
                                        }
                                    }
                                }
                            }
                            at += 1;
                        }
                    }
                }
                Mode::BetweenItems => {
                    match data[at] {
                        b' ' | b'\n' | b'\r' | b'\t' | b',' => {}
                        b']' => {
                            s.skeleton.push(b']');
                            s.depth -= 1;
                            s.mode = Mode::Skeleton;
                        }
                        b'{' => {
                            s.mode = Mode::InItem;
                            s.item_braces = 1;
                            item_start = batch.bytes.len();
                            (item_line, item_column) = s.position(data, at);
                            copy_from = at;
                        }
                        _ => return Err(StreamError::Unsupported),
                    }
                    at += 1;
                }
                Mode::Skeleton => {
                    s.skeleton_byte(data[at])?;
                    at += 1;
                }
            }
        }
        if s.mode == Mode::InItem {
            batch.bytes.extend_from_slice(&data[copy_from..]);
        }
        s.position(data, data.len());
    }
    if s.mode != Mode::Skeleton || s.depth != 0 {
        // A truncated file: let the whole-file parser report where.
        return Err(StreamError::Unsupported);
    }
    if !batch.items.is_empty() && batches.send(batch).is_err() {
        return Err(StreamError::Unsupported);
    }
    Ok(s.skeleton)
}

impl Scanner {
    /// Line and column (1-based) of `data[offset]`, counting newlines incrementally.
    fn position(&mut self, data: &[u8], offset: usize) -> (usize, usize) {
        for newline in memchr::memchr_iter(b'\n', &data[self.counted_to..offset]) {
            self.lines += 1;
            self.last_newline = Some(self.counted_to + newline);
        }
        self.counted_to = offset;
        // A line that began in an earlier chunk has an unknown column start; items in kubectl
        // output start on their own line, so this only blurs errors in one-line files.
        let column = match self.last_newline {
            Some(newline) => offset - newline,
            None => offset + 1,
        };
        (self.lines + 1, column)
    }

    fn skeleton_byte(&mut self, byte: u8) -> Result<(), StreamError> {
        self.skeleton.push(byte);
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                if self.in_key {
                    self.in_key = false;
                    self.last_key = std::mem::take(&mut self.key);
                }
            } else if self.in_key {
                self.key.push(byte);
            }
            return Ok(());
        }
        match byte {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key {
                    self.in_key = true;
                    self.key.clear();
                }
            }
            b'[' if self.depth == 1 && !self.expect_key && self.last_key == b"items" => {
                self.depth += 1;
                self.mode = Mode::BetweenItems;
            }
            b'{' | b'[' => {
                if self.depth == 0 && byte != b'{' {
                    return Err(StreamError::Unsupported);
                }
                self.depth += 1;
                if self.depth == 1 {
                    self.expect_key = true;
                }
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            b':' if self.depth == 1 => self.expect_key = false,
            b',' if self.depth == 1 => self.expect_key = true,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    struct Split {
        skeleton: Vec<u8>,
        items: Vec<Value>,
    }

    fn split(text: &str, workers: usize) -> Result<Split, StreamError> {
        let mut items = Vec::new();
        let skeleton = split_items(text.as_bytes(), parse, workers, &mut |item| {
            items.push(item)
        })?;
        Ok(Split { skeleton, items })
    }

    #[test]
    fn splits_items_and_keeps_the_rest() {
        let text = r#"{"apiVersion": "v1", "items": [
            {"kind": "Pod", "metadata": {"name": "a", "annotations": {"x": "}\"]{"}}, "spec": {"items": [1, 2]}},
            {"kind": "Pod", "metadata": {"name": "b"}}
        ], "kind": "List", "metadata": {"items": "not these"}}"#;
        for workers in [1, 2] {
            let split = split(text, workers).unwrap();
            let skeleton: Value = serde_json::from_slice(&split.skeleton).unwrap();
            assert_eq!(
                skeleton,
                serde_json::json!({"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"items": "not these"}})
            );
            let names: Vec<&str> = split
                .items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, vec!["a", "b"]);
            assert_eq!(split.items[0]["metadata"]["annotations"]["x"], "}\"]{");
        }
    }

    #[test]
    fn many_items_across_chunks_and_batches_stay_in_order() {
        let mut text = String::from("{\"kind\":\"List\",\"items\":[");
        for i in 0..60_000 {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                "{{\"metadata\":{{\"name\":\"pod-{i}\",\"padding\":\"{}\"}}}}",
                "x".repeat(200)
            ));
        }
        text.push_str("]}");
        let split = split(&text, 2).unwrap();
        assert_eq!(split.items.len(), 60_000);
        assert!(
            split
                .items
                .iter()
                .enumerate()
                .all(|(i, item)| item["metadata"]["name"] == format!("pod-{i}"))
        );
    }

    #[test]
    fn errors_carry_the_file_position() {
        let text = "{\"items\": [\n  {\"a\": 1},\n  {\"b\": tru}\n]}";
        match split(text, 2) {
            Err(StreamError::Json { item, at }) => {
                assert_eq!((at.index, at.line, at.column), (1, 3, 3));
                assert_eq!(item, b"{\"b\": tru}");
            }
            other => panic!("{:?}", other.map(|s| s.items)),
        }
        assert!(matches!(split("[1, 2]", 1), Err(StreamError::Unsupported)));
        assert!(matches!(
            split("{\"items\": [1]}", 1),
            Err(StreamError::Unsupported)
        ));
    }
}
