//! What a strategy package may make the engine do: bytes per file, YAML nodes after alias expansion, table rows, expression and flow steps.
//!
//! A package is written by an analyst and uploaded through the service, so it is input like any
//! other: every resource it controls is bounded here, and every bound is checked when the
//! package compiles — before anything is evaluated — with a message naming the file or the
//! expression and the setting that would raise it. The defaults are far above what real
//! strategies use (the bundled example uses a small fraction of each) and far below what would
//! hurt a server.

use credence_expr::ExprLimits;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;

/// Limits applied when a package compiles; see `docs/strategy-format.md`, "Limits".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per expression: steps, range sizes, list and string lengths.
    pub expression: ExprLimits,
    /// The most steps all the expressions one decision of a flow can run add up to.
    pub max_flow_steps: u64,
    /// The most rows one decision table may have.
    pub max_table_rows: usize,
    /// The largest text file (YAML, CSV, list) a package may hold.
    pub max_text_file_bytes: usize,
    /// The most YAML nodes one file may produce, every alias expanded.
    pub max_yaml_nodes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            expression: ExprLimits::default(),
            max_flow_steps: 10_000_000,
            max_table_rows: 100_000,
            max_text_file_bytes: 8 * 1024 * 1024,
            max_yaml_nodes: 1_000_000,
        }
    }
}

/// Counts the nodes a YAML document produces, aliases expanded as a deserializer replays them,
/// and stops at `limit`: so a file of a few hundred bytes whose anchors are referenced
/// thousands of times is refused after `limit` nodes of work, never built.
pub(crate) fn check_yaml_nodes(text: &str, limit: u64) -> Result<(), YamlRefusal> {
    let counter = NodeCounter {
        seen: Cell::new(0),
        limit,
    };
    let outcome = serde_yaml_ng::Deserializer::from_str(text)
        .next()
        .map(|document| (&counter).deserialize(document));
    match outcome {
        Some(Err(_)) if counter.seen.get() > limit => Err(YamlRefusal::TooManyNodes(format!(
            "the YAML expands to more than {limit} nodes (anchors and aliases counted as often as they are used); split the file or raise limits.yaml_nodes"
        ))),
        // A syntax error, or the parser's own limits (nesting, alias jumps): refused here,
        // before the real parse could build anything.
        Some(Err(e)) => Err(YamlRefusal::Yaml(e)),
        _ => Ok(()),
    }
}

/// Why a YAML file was refused before it was parsed into the package's types.
#[derive(Debug)]
pub(crate) enum YamlRefusal {
    /// More nodes than the limit, aliases expanded; the message says so.
    TooManyNodes(String),
    /// The parser's own error, with its location.
    Yaml(serde_yaml_ng::Error),
}

struct NodeCounter {
    seen: Cell<u64>,
    limit: u64,
}

impl NodeCounter {
    fn count<E: serde::de::Error>(&self) -> Result<(), E> {
        let seen = self.seen.get() + 1;
        self.seen.set(seen);
        if seen > self.limit {
            return Err(E::custom("node limit reached"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &NodeCounter {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &NodeCounter {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.count()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.count()
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.count()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.count()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.count()?;
        deserializer.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.count()?;
        deserializer.deserialize_any(self)
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.count()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One anchor of `width` items referenced `references` times.
    fn alias_bomb(width: usize, references: usize) -> String {
        let items = vec!["1"; width].join(", ");
        let mut text = format!("a: &a [{items}]\nb: [");
        text.push_str(&vec!["*a"; references].join(", "));
        text.push_str("]\n");
        text
    }

    #[test]
    fn yaml_node_counts_expand_aliases() {
        // (document, limit, refused?)
        let cases: &[(String, u64, bool)] = &[
            ("a: 1\nb: [1, 2, 3]\n".into(), 10, false),
            ("a: 1\nb: [1, 2, 3]\n".into(), 5, true),
            (alias_bomb(10, 10), 200, false),
            (alias_bomb(10, 10), 100, true),
            (alias_bomb(20_000, 20_000), 1_000_000, true),
            // A syntax error is refused too, as the parser words it.
            ("a: [1, 2\n".into(), 10, true),
        ];
        for (text, limit, refused) in cases {
            let result = check_yaml_nodes(text, *limit);
            assert_eq!(result.is_err(), *refused, "{limit}: {result:?}");
        }
    }

    #[test]
    fn an_alias_bomb_is_refused_after_the_limit_not_expanded() {
        let text = alias_bomb(20_000, 20_000);
        assert!(text.len() < 200_000);
        let Err(YamlRefusal::TooManyNodes(message)) = check_yaml_nodes(&text, 1_000_000) else {
            panic!("not refused for its size");
        };
        assert!(message.contains("more than 1000000 nodes"), "{message}");
    }
}
