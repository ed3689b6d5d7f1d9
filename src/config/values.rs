//! Checks on single values: numbers in range, booleans, names AWS
//! accepts, passwords Redshift accepts. Each returns the message a user
//! sees after `[SECTION] KEY`.

use crate::sql::{describe_char, printable};

pub(super) fn parse_int(v: &str, min: u32, max: u32) -> Result<u32, String> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            format!(
                "`{}` is not a whole number from {min} to {max}",
                printable(v)
            )
        })
}

pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{}` is not true or false", printable(v))),
    }
}

pub(super) fn parse_char(v: &str, what: &str) -> Result<char, String> {
    let c = match v {
        "\\t" | "tab" | "TAB" => '\t',
        _ => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(format!(
                        "the {what} must be one character (or `\\t` for tab), not `{}`",
                        printable(v)
                    ));
                }
            }
        }
    };
    if c.is_control() && c != '\t' || !c.is_ascii() {
        return Err(format!("the {what} cannot be {}", describe_char(c)));
    }
    Ok(c)
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, …
pub(super) fn parse_region(v: &str) -> Result<String, String> {
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{}` is not an AWS region; expected e.g. `us-east-1`",
            printable(v)
        ))
    }
}

/// IAM names: letters, digits and `+=,.@_-`.
/// Workgroup and namespace names: 3 to 64 lower-case letters, digits and
/// hyphens.
pub(super) fn parse_serverless_name(v: &str) -> Result<String, String> {
    if !(3..=64).contains(&v.len())
        || !v
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "`{}` is not a valid name; use 3 to 64 lower-case letters, digits and hyphens",
            printable(v)
        ));
    }
    Ok(v.to_string())
}

pub(super) fn parse_iam_name(v: &str, max: usize) -> Result<String, String> {
    // A pasted ARN is the commonest mistake here; say what to keep.
    if let Some(name) = v
        .strip_prefix("arn:")
        .and_then(|rest| rest.rsplit('/').next())
    {
        return Err(format!(
            "`{}` is an ARN; give the name only, e.g. `{}`",
            printable(v),
            printable(name)
        ));
    }
    if v.is_empty() || v.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if let Some(bad) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "`{}` contains {}; IAM names use letters, digits and + = , . @ _ -",
            printable(v),
            describe_char(bad)
        ));
    }
    Ok(v.to_string())
}

/// Cluster identifiers: 1-63 lower-case letters, digits and hyphens, starting
/// with a letter, no `--`, not ending with `-`.
pub(super) fn parse_cluster_identifier(v: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !v.ends_with('-')
        && !v.contains("--");
    if ok {
        // Redshift stores identifiers in lower case; so do we, to compare.
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{}` is not a valid cluster identifier: 1 to 63 letters, digits or hyphens, starting \
             with a letter, without `--` or a trailing `-`",
            printable(v)
        ))
    }
}

/// `ra3.large`, `dc2.8xlarge`, …: family, dot, size.
pub(super) fn parse_node_type(v: &str) -> Result<String, String> {
    let ok = v.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && size
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "`{}` is not a node type; expected e.g. `ra3.large` or `dc2.large`",
            printable(v)
        ))
    }
}

/// Database and user names: a letter, then letters, digits or `_`.
pub(super) fn parse_db_name(v: &str, max: usize, what: &str) -> Result<String, String> {
    let ok = (1..=max).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{}` is not a valid {what}: 1 to {max} letters, digits or `_`, starting with a letter",
            printable(v)
        ))
    }
}

/// Redshift's admin password rules. The message never repeats the password.
pub(super) fn check_password(p: &str) -> Result<(), String> {
    if !(8..=64).contains(&p.len()) {
        return Err(format!(
            "is {} characters long; Redshift wants 8 to 64",
            p.chars().count()
        ));
    }
    if !p.chars().any(|c| c.is_ascii_uppercase())
        || !p.chars().any(|c| c.is_ascii_lowercase())
        || !p.chars().any(|c| c.is_ascii_digit())
    {
        return Err(
            "needs at least one upper-case letter, one lower-case letter and one digit".into(),
        );
    }
    // Name the rule, not the character: even one character of a password
    // does not belong in a terminal or a CI log.
    if p.chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, '\'' | '"' | '\\' | '/' | '@'))
    {
        return Err(
            "contains a character Redshift does not allow; use printable ASCII except ' \" \\ / @ and space"
                .into(),
        );
    }
    Ok(())
}
