//! Numbers as the sample's users send them.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A number, or a number written as a string (the sample's users send `"interval": "120"`).
#[derive(Debug, Clone, PartialEq)]
pub enum Numeric {
    Number(serde_json::Number),
    Text(String),
}

impl Numeric {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Numeric::Number(n) => n.as_f64(),
            Numeric::Text(s) => s.trim().parse().ok(),
        }
    }

    /// The version number as written.
    pub fn text(&self) -> String {
        match self {
            Numeric::Number(n) => n.to_string(),
            Numeric::Text(s) => s.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Numeric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Numeric;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Numeric, E> {
                Ok(Numeric::Number(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Numeric, E> {
                Ok(Numeric::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Numeric, E> {
                serde_json::Number::from_f64(v)
                    .map(Numeric::Number)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Numeric, E> {
                Ok(Numeric::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}
