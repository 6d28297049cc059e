//! `decode`, `encode`, `info`: crit's image verbs.

use anyhow::{Context, Result};
use clap::Args;
use stasis_image::convert;
use stasis_image::file::create_private;
use stasis_image::json::Json;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Image file to read (default: standard input)
    #[arg(short = 'i', long = "in")]
    input: Option<PathBuf>,
    /// Where to write the JSON (default: standard output)
    #[arg(short = 'o', long = "out")]
    output: Option<PathBuf>,
    /// Indent, and print addresses, flags and devices readably
    #[arg(long)]
    pretty: bool,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// JSON file to read (default: standard input)
    #[arg(short = 'i', long = "in")]
    input: Option<PathBuf>,
    /// Image file to write (default: standard output)
    #[arg(short = 'o', long = "out")]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Image file
    #[arg(value_name = "IMG")]
    input: PathBuf,
}

/// Standard input is copied to a temporary name only so that errors can
/// name something; "-" stands for it.
fn read_input(path: &Option<PathBuf>) -> Result<(PathBuf, Vec<u8>)> {
    match path {
        Some(p) => {
            let data = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok((p.clone(), data))
        }
        None => {
            let mut data = Vec::new();
            std::io::stdin().read_to_end(&mut data).context("cannot read standard input")?;
            Ok((PathBuf::from("-"), data))
        }
    }
}

pub fn decode(a: DecodeArgs) -> Result<ExitCode> {
    let (path, data) = read_input(&a.input)?;
    let mut r = stasis_image::file::ImageReader::from_bytes(&path, data)?;
    let doc = convert::decode_reader(&mut r, a.pretty)?;
    let text = doc.to_text(a.pretty);
    match a.output {
        // Like crit: a file gets the bare JSON, the terminal a final newline.
        Some(out) => {
            let mut f = create_private(&out)?;
            f.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", out.display()))?;
        }
        None => {
            let mut o = std::io::stdout().lock();
            writeln!(o, "{text}").context("cannot write standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn encode(a: EncodeArgs) -> Result<ExitCode> {
    let (path, data) = read_input(&a.input)?;
    let text = String::from_utf8(data).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text; encode expects JSON", path.display()))?;
    let doc = Json::parse(&text).map_err(|e| anyhow::anyhow!("{}: bad JSON: {e}", path.display()))?;
    let bytes = convert::encode(&doc).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match a.output {
        Some(out) => {
            let mut f = create_private(&out)?;
            f.write_all(&bytes).with_context(|| format!("cannot write {}", out.display()))?;
        }
        None => std::io::stdout().lock().write_all(&bytes).context("cannot write standard output")?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(a: InfoArgs) -> Result<ExitCode> {
    let (magic, count) = convert::info(&a.input)?;
    let doc = Json::Obj(vec![("magic".into(), Json::Str(magic)), ("count".into(), Json::Int(count as i128))]);
    println!("{}", doc.to_text(true));
    Ok(ExitCode::SUCCESS)
}
