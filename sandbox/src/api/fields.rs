//! Every field of a request, read and checked as the Data API's reference
//! defines it (the service model's lengths, patterns, ranges and types),
//! before anything else looks at it.
//!
//! Why so strict: these values become PostgreSQL names, connection
//! settings, map keys and slice offsets. A field of the wrong type is a
//! `SerializationException`, a value out of its bounds a
//! `ValidationException` that names the field, and nothing half-checked
//! goes further. Unknown fields are ignored, as the service ignores them.

use serde_json::{Map, Value};

use super::ApiError;

/// The largest SQL text the service takes (Data API considerations: "the
/// maximum query statement size is 100 KB").
pub const MAX_SQL_BYTES: usize = 100 * 1024;

/// A request's JSON object, read field by field.
pub struct Fields<'a>(pub &'a Map<String, Value>);

/// `1 validation error detected: Value … at 'Field' failed to satisfy
/// constraint: …`, the service's wording.
fn invalid(field: &str, value: &str, constraint: &str) -> ApiError {
    let shown: String = value.chars().take(64).collect();
    let more = if value.chars().count() > 64 {
        "…"
    } else {
        ""
    };
    ApiError::validation(format!(
        "1 validation error detected: Value '{shown}{more}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

/// The service's error for a required field that is absent.
pub fn missing(field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

fn wrong_type(field: &str, expected: &str) -> ApiError {
    ApiError::serialization(format!("{field} must be {expected}"))
}

impl<'a> Fields<'a> {
    /// A string field, if present (JSON `null` counts as absent).
    pub fn string(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(field, "a string")),
        }
    }

    /// A string field that must be there.
    pub fn required(&self, field: &str) -> Result<&'a str, ApiError> {
        self.string(field)?.ok_or_else(|| missing(field))
    }

    /// A string of `min..=max` characters.
    pub fn sized(&self, field: &str, min: usize, max: usize) -> Result<Option<&'a str>, ApiError> {
        let Some(s) = self.string(field)? else {
            return Ok(None);
        };
        let n = s.chars().count();
        if n < min || n > max {
            return Err(invalid(
                field,
                s,
                &format!("Member must have length between {min} and {max}, inclusive"),
            ));
        }
        Ok(Some(s))
    }

    /// An integer in `min..=max`.
    pub fn int(&self, field: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let n = match self.0.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| wrong_type(field, "an integer"))?,
            Some(_) => return Err(wrong_type(field, "an integer")),
        };
        if n < min || n > max {
            return Err(invalid(
                field,
                &n.to_string(),
                &format!("Member must have value between {min} and {max}, inclusive"),
            ));
        }
        Ok(Some(n))
    }

    /// A boolean.
    pub fn bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(field, "a boolean")),
        }
    }

    /// One of `allowed`.
    pub fn choice(&self, field: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        let Some(s) = self.string(field)? else {
            return Ok(None);
        };
        if !allowed.contains(&s) {
            return Err(invalid(
                field,
                s,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Some(s))
    }

    /// A list of strings, `min..=max` long.
    pub fn strings(
        &self,
        field: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<Vec<&'a str>>, ApiError> {
        let list = match self.0.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(wrong_type(field, "a list of strings")),
        };
        if list.len() < min || list.len() > max {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: \
                 Member must have length between {min} and {max}, inclusive"
            )));
        }
        list.iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| wrong_type(field, "a list of strings"))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// `ClusterIdentifier`: 1–63 characters, `[a-z][a-z0-9]*(-[a-z0-9]+)*`.
    pub fn cluster_identifier(&self) -> Result<Option<&'a str>, ApiError> {
        let Some(s) = self.sized("ClusterIdentifier", 1, 63)? else {
            return Ok(None);
        };
        let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !ok {
            return Err(invalid(
                "ClusterIdentifier",
                s,
                "Member must satisfy regular expression pattern: [a-z][a-z0-9]*(-[a-z0-9]+)*",
            ));
        }
        Ok(Some(s))
    }

    /// `WorkgroupName`: a name of 3–63 of `[a-z0-9-]`, or a workgroup's ARN,
    /// whose last part is taken as the name.
    pub fn workgroup_name(&self) -> Result<Option<String>, ApiError> {
        let Some(s) = self.sized("WorkgroupName", 3, 128)? else {
            return Ok(None);
        };
        let name_ok = |n: &str| {
            (1..=63).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if (3..=63).contains(&s.len()) && name_ok(s) {
            return Ok(Some(s.to_string()));
        }
        if s.starts_with("arn:")
            && s.contains(":redshift-serverless:")
            && let Some((_, path)) = s.split_once(":workgroup/")
            && path.split('/').all(name_ok)
            && let Some(name) = path.rsplit('/').next()
        {
            return Ok(Some(name.to_string()));
        }
        Err(invalid(
            "WorkgroupName",
            s,
            "Member must be a workgroup name ([a-z0-9-]{3,63}) or a workgroup's ARN",
        ))
    }

    /// `Database`, as Redshift names databases: 1–127 bytes of ASCII
    /// letters, digits, `_` and `$`, starting with a letter or `_` (the
    /// SQL reference's "Names and identifiers"; the sandbox takes no quoted
    /// names, which keeps every database name a plain PostgreSQL one).
    pub fn database(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        let Some(s) = self.string(field)? else {
            return Ok(None);
        };
        let ok = (1..=127).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
        if !ok {
            return Err(invalid(
                field,
                s,
                "Member must be a database name: 1 to 127 ASCII letters, digits, '_' or '$', starting with a letter or '_'",
            ));
        }
        Ok(Some(s))
    }

    /// `DbUser`, as Redshift names users: 1–128 characters of letters,
    /// digits, `_ + . @ - $`, or `:` (the `IAM:` and `IAMR:` users the Data
    /// API derives), starting with a letter or `_`.
    pub fn db_user(&self) -> Result<Option<&'a str>, ApiError> {
        let Some(s) = self.string("DbUser")? else {
            return Ok(None);
        };
        let ok = (1..=128).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+.@-$:".contains(&b));
        if !ok {
            return Err(invalid(
                "DbUser",
                s,
                "Member must be a user name: 1 to 128 ASCII letters, digits or _+.@-$:, starting with a letter or '_'",
            ));
        }
        Ok(Some(s))
    }

    /// A statement or session id: `[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d{0,2})?`.
    pub fn uuid(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        let Some(s) = self.string(field)? else {
            return Ok(None);
        };
        if !is_statement_id(s) {
            return Err(invalid(
                field,
                s,
                "Member must satisfy regular expression pattern: [a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d{0,2})?",
            ));
        }
        Ok(Some(s))
    }

    /// A SQL text: present, not blank, at most [`MAX_SQL_BYTES`].
    pub fn sql_text(field: &str, sql: &str) -> Result<(), ApiError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(ApiError::validation(format!(
                "{field}: the SQL is {} bytes; the Data API takes at most {MAX_SQL_BYTES}",
                sql.len()
            )));
        }
        Ok(())
    }

    /// A page token of ours: a row or item offset, no further than `len`.
    pub fn offset(&self, len: usize) -> Result<usize, ApiError> {
        let Some(t) = self.string("NextToken")? else {
            return Ok(0);
        };
        match t.parse::<usize>() {
            Ok(n) if n <= len => Ok(n),
            _ => Err(ApiError::validation(format!(
                "The NextToken '{}' is not one this service returned; start again without it",
                t.chars().take(64).collect::<String>()
            ))),
        }
    }
}

/// Whether `s` has the shape of a statement id (a sub-statement's
/// included).
pub fn is_statement_id(s: &str) -> bool {
    let (uuid, sub) = match s.split_once(':') {
        Some((u, n)) => (u, Some(n)),
        None => (s, None),
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    shape_ok && sub.is_none_or(|n| n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: &Value) -> Fields<'_> {
        Fields(v.as_object().unwrap())
    }

    #[test]
    fn names_are_checked_as_the_reference_defines_them() {
        let ok = json!({"ClusterIdentifier": "my-cluster-1", "Database": "dev_$1", "DbUser": "IAM:alice.b@x"});
        let f = fields(&ok);
        assert_eq!(f.cluster_identifier().unwrap(), Some("my-cluster-1"));
        assert_eq!(f.database("Database").unwrap(), Some("dev_$1"));
        assert_eq!(f.db_user().unwrap(), Some("IAM:alice.b@x"));
        for bad in ["", "-a", "a-", "a--b", "A", "1a", "é", &"a".repeat(64)] {
            let v = json!({"ClusterIdentifier": bad});
            assert!(fields(&v).cluster_identifier().is_err(), "{bad}");
        }
        for bad in [
            "",
            "1dev",
            "dé",
            "a\"b",
            "a b",
            "a;b",
            &"d".repeat(128),
            &"é".repeat(40),
        ] {
            let v = json!({"Database": bad});
            assert!(fields(&v).database("Database").is_err(), "{bad}");
        }
        for bad in ["", "a'b", "a\"b", "a b", &"u".repeat(129)] {
            let v = json!({"DbUser": bad});
            assert!(fields(&v).db_user().is_err(), "{bad}");
        }
    }

    #[test]
    fn workgroups_by_name_or_arn() {
        let v = json!({"WorkgroupName": "arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/abc-1"});
        assert_eq!(
            fields(&v).workgroup_name().unwrap().as_deref(),
            Some("abc-1")
        );
        for bad in ["ab", "Upper", "a_b", "arn:aws:s3:::x", &"w".repeat(64)] {
            let v = json!({"WorkgroupName": bad});
            assert!(fields(&v).workgroup_name().is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_and_numbers_out_of_bounds_are_refused() {
        for t in ["18446744073709551615", "-1", "1e3", "abc", "11"] {
            let v = json!({"NextToken": t});
            assert!(fields(&v).offset(10).is_err(), "{t}");
        }
        let v = json!({"NextToken": "10"});
        assert_eq!(fields(&v).offset(10).unwrap(), 10);
        let v = json!({"MaxResults": -1, "Wait": 31, "Big": 1e300, "Str": "5"});
        assert!(fields(&v).int("MaxResults", 0, 100).is_err());
        assert!(fields(&v).int("Wait", 1, 30).is_err());
        assert!(fields(&v).int("Big", 1, 30).is_err());
        assert!(fields(&v).int("Str", 1, 30).is_err());
    }

    #[test]
    fn statement_ids_have_the_services_shape() {
        assert!(is_statement_id("0b1c2d3e-0000-4000-8000-000000000000"));
        assert!(is_statement_id("0b1c2d3e-0000-4000-8000-000000000000:12"));
        for bad in [
            "",
            "x",
            "0b1c2d3e-0000-4000-8000-000000000000:123",
            "0B1C2D3E-0000-4000-8000-000000000000",
            "0b1c2d3e-0000-4000-8000-00000000000é",
        ] {
            assert!(!is_statement_id(bad), "{bad}");
        }
    }
}
