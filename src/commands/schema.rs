//! `schema`: the answers file's JSON Schema (`crate::schema`) on stdout.

use crate::cli::SchemaArgs;
use crate::error::Result;
use crate::schema::{Document, schema};

pub fn run(args: SchemaArgs) -> Result<()> {
    let document = if args.defaults { Document::WizardDefaults } else { Document::Answers };
    crate::outln!("{}", serde_json::to_string_pretty(&schema(document)).expect("a schema is plain JSON"));
    Ok(())
}
