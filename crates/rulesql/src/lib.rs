//! The subset of the AWS IoT rules SQL (version 2016-03-23) that the local
//! core runs: `SELECT` items (`*`, field paths, literals, arithmetic,
//! `topic()`, `topic(n)`, `timestamp()`, `lower()`, `upper()`, each with an
//! optional `AS` name), `FROM '<topic filter>'`, and a `WHERE` condition
//! with comparisons, `AND`, `OR`, `NOT` and parentheses; plus the `${...}`
//! substitution templates of a republish topic.
//!
//! Pure: [`parse`] turns a statement into a [`Statement`]; [`Statement::apply`]
//! evaluates it against one message and says what to publish; [`render`]
//! fills a template. No I/O here: the core's rules engine feeds messages in.
//!
//! Semantics follow the AWS IoT Developer Guide's SQL reference: the WHERE
//! clause is evaluated first and the actions run only when it is `true`; an
//! operand of the wrong type makes a comparison or a logical operator
//! *Undefined* (which is not true); a SELECT item that is Undefined is left
//! out of the outgoing object; `SELECT *` of a payload that is not JSON
//! passes it through unchanged.

mod eval;
mod lexer;
mod parser;

pub use eval::{render, Message, Output};
pub use parser::{parse, Expr, Item, Statement};

/// Why a statement is not in the subset (or not SQL at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SqlError(pub String);

/// The deepest nesting of parentheses, operators and function calls a
/// statement may have: bounds the parser's recursion (a statement is at
/// most a request body, but 10,000 `(` must not overflow the stack).
pub const MAX_DEPTH: usize = 64;

/// The most binary operators in one statement (bounds the depth of a
/// left-leaning chain such as `a + a + ...`, which the evaluator walks).
pub const MAX_OPERATORS: usize = 256;
