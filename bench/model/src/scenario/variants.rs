//! `[[variant]]` resolution: each variant's keys over the scenario's
//! `[migration]` and `[policy]`, checked key by key so an error names the
//! variant and its key.

use super::{Problem, Scenario, Variant};

/// The variants of `sc` resolved against the tables written in `text` (one
/// unnamed variant when none are written).
pub(crate) fn resolve(sc: &Scenario, text: &str) -> Result<Vec<Variant>, Problem> {
    if sc.variant_text.is_empty() {
        return Ok(vec![Variant {
            name: String::new(),
            migration: sc.migration.clone(),
            policy: sc.policy.clone(),
        }]);
    }
    let doc: toml::Table = toml::from_str(text).map_err(|e| Problem::new("", e.to_string()))?;
    let base = |t: &str| {
        doc.get(t)
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default()
    };
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, v) in sc.variant_text.iter().enumerate() {
        let here = format!("variant `{}`", v.name);
        let problem = |field: String, message: String| Problem {
            field,
            variant: Some(i),
            message,
        };
        let name_ok = !v.name.is_empty()
            && v.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            let m = format!("{here}: use letters, digits, - and _ only");
            return Err(problem("name".into(), m));
        }
        if !names.insert(v.name.clone()) {
            return Err(problem("name".into(), format!("{here} appears twice")));
        }
        let migration = merge("migration", base("migration"), &v.migration, &here);
        let policy = merge("policy", base("policy"), &v.policy, &here);
        out.push(Variant {
            name: v.name.clone(),
            migration: migration.map_err(|(f, m)| problem(f, m))?,
            policy: policy.map_err(|(f, m)| problem(f, m))?,
        });
    }
    Ok(out)
}

/// `over`'s keys on top of `base`, deserialised; each key is first tried
/// alone so an error names it.
fn merge<T: serde::de::DeserializeOwned>(
    table: &str,
    base: toml::Table,
    over: &toml::Table,
    here: &str,
) -> Result<T, (String, String)> {
    let mut merged = base;
    for (k, val) in over {
        let mut alone = toml::Table::new();
        alone.insert(k.clone(), val.clone());
        if let Err(e) = toml::Value::Table(alone).try_into::<T>() {
            return Err((
                format!("{table}.{k}"),
                format!("{here}: {}", e.message().trim()),
            ));
        }
        merged.insert(k.clone(), val.clone());
    }
    toml::Value::Table(merged)
        .try_into::<T>()
        .map_err(|e| (table.to_string(), format!("{here}: {}", e.message().trim())))
}
