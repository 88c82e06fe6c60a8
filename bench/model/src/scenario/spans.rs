//! Where a field stands in a scenario file, from the TOML parser's spans
//! (`toml_edit`'s spanned document): the dotted key at a byte offset (for
//! serde's errors, which give an offset) and the offset of a dotted key
//! (for validation errors, which name a field).

use toml_edit::{ImDocument, Item, Table, Value};

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

fn contains(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The dotted key (`guest.ram`) whose key or value covers `offset`; the
/// innermost table's name when the offset is in no key (a header).
pub(crate) fn path_at(doc: &ImDocument<&str>, offset: usize) -> String {
    let mut path = Vec::new();
    walk(doc.as_table(), offset, &mut path);
    path.join(".")
}

fn walk(table: &Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (name, item) in table.iter() {
        let key_hit = contains(table.key(name).and_then(|k| k.span()), offset);
        path.push(name.to_string());
        let hit = match item {
            Item::Table(t) => walk(t, offset, path) || key_hit || contains(t.span(), offset),
            Item::ArrayOfTables(a) => a
                .iter()
                .any(|t| walk(t, offset, path) || contains(t.span(), offset)),
            Item::Value(v) => key_hit || value_hit(v, offset),
            Item::None => false,
        };
        if hit {
            return true;
        }
        path.pop();
    }
    false
}

fn value_hit(v: &Value, offset: usize) -> bool {
    contains(v.span(), offset)
        || match v {
            Value::Array(a) => a.iter().any(|v| value_hit(v, offset)),
            Value::InlineTable(t) => t.iter().any(|(_, v)| value_hit(v, offset)),
            _ => false,
        }
}

/// Byte offset of a dotted field (`migration.postcopy`) as written: in the
/// `[[variant]]` numbered `variant` when given, else in its table; the
/// table's header when the key is not written; 0 when neither is.
pub(crate) fn offset_of(doc: &ImDocument<&str>, dotted: &str, variant: Option<usize>) -> usize {
    let root: &Table = match variant {
        Some(i) => match doc
            .get("variant")
            .and_then(Item::as_array_of_tables)
            .and_then(|a| a.get(i))
        {
            Some(t) => t,
            None => doc.as_table(),
        },
        None => doc.as_table(),
    };
    let mut table = root;
    let mut best = root.span().map(|s| s.start);
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some(k) = table.key(part).and_then(|k| k.span()) {
            best = Some(k.start);
        }
        match table.get(part) {
            Some(Item::Table(t)) if !last => {
                if let Some(s) = t.span() {
                    best = Some(s.start);
                }
                table = t;
            }
            Some(item) if last => {
                return best.or_else(|| item.span().map(|s| s.start)).unwrap_or(0);
            }
            _ => break,
        }
    }
    best.unwrap_or(0)
}

/// The strings written for a dotted field (one, or a list's), in the
/// `[[variant]]` numbered `variant` when given, else in its table.
pub(crate) fn written(doc: &ImDocument<&str>, dotted: &str, variant: Option<usize>) -> Vec<String> {
    let root: &Table = match variant.and_then(|i| {
        doc.get("variant")
            .and_then(Item::as_array_of_tables)
            .and_then(|a| a.get(i))
    }) {
        Some(t) => t,
        None => doc.as_table(),
    };
    let mut item: Option<&Item> = None;
    let mut table = Some(root);
    for part in dotted.split('.') {
        item = table.and_then(|t| t.get(part));
        table = item.and_then(Item::as_table);
    }
    let strings = |v: &Value| v.as_str().map(str::to_string);
    match item.and_then(Item::as_value) {
        Some(Value::Array(a)) => a.iter().filter_map(strings).collect(),
        Some(v) => strings(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// `message` with the value it starts with (a quantity in migbench's
/// notation, `50min is outside 1ms – 2000s`) as the user wrote it
/// (`3000000ms`), when one of the `written` strings means it.
pub(crate) fn as_written(message: &str, written: &[String]) -> String {
    use crate::scalar::ScalarField;
    use crate::units::{BitRate, ByteRate, Dur, Size};
    let Some((token, rest)) = message.split_once(" is ") else {
        return message.to_string();
    };
    let canonical = |w: &str| -> Option<String> {
        Dur::parse_str(w)
            .map(|v| v.to_string())
            .or_else(|_| Size::parse_str(w).map(|v| v.to_string()))
            .or_else(|_| BitRate::parse_str(w).map(|v| v.to_string()))
            .or_else(|_| ByteRate::parse_str(w).map(|v| v.to_string()))
            .ok()
    };
    match written
        .iter()
        .map(|w| w.trim())
        .find(|w| *w != token && canonical(w).as_deref() == Some(token))
    {
        Some(w) => format!("{w} is {rest}"),
        None => message.to_string(),
    }
}
