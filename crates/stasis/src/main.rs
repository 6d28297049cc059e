//! `stasis`: checkpoint and restore Linux processes, with CRIU's command
//! line and image format.
#![forbid(unsafe_code)]

mod cli_check;
mod cli_dump;
mod cli_image;
mod cli_restore;
mod cli_show;
mod logging;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "stasis", version, about = "Checkpoint and restore Linux processes (CRIU-compatible)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Checkpoint a process tree into image files
    Dump(cli_dump::DumpArgs),
    /// Restore a process tree from image files
    Restore(cli_restore::RestoreArgs),
    /// Check that the kernel has what stasis needs
    Check(cli_check::CheckArgs),
    /// Print an image as JSON (crit decode)
    Decode(cli_image::DecodeArgs),
    /// Build an image from JSON (crit encode)
    Encode(cli_image::EncodeArgs),
    /// Print an image's type and number of entries (crit info)
    Info(cli_image::InfoArgs),
    /// Summarise a checkpoint directory: processes, files, memory (crit x)
    Show(cli_show::ShowArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Dump(a) => cli_dump::run(a),
        Cmd::Restore(a) => cli_restore::run(a),
        Cmd::Check(a) => cli_check::run(a),
        Cmd::Decode(a) => cli_image::decode(a),
        Cmd::Encode(a) => cli_image::encode(a),
        Cmd::Info(a) => cli_image::info(a),
        Cmd::Show(a) => cli_show::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: the outermost context first, then each cause.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("stasis: error: {}", chain.join(": "));
            ExitCode::from(1)
        }
    }
}
