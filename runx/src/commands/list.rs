use anyhow::Result;
use clap::ValueEnum;

use super::Global;

#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short, value_enum, default_value = "table")]
    format: ListFormat,
    /// Print only the ids.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let (containers, unreadable) = global.cleanup_runtime()?.list()?;
    for (id, error) in &unreadable {
        eprintln!("runx: warning: container {id} is not listed: {error}");
    }
    if args.quiet {
        for (state, _) in &containers {
            println!("{}", state.id);
        }
        return Ok(());
    }
    match args.format {
        ListFormat::Json => {
            let docs: Vec<_> = containers.iter().map(|(s, status)| super::state::document(s, *status)).collect();
            println!("{}", serde_json::to_string(&docs)?);
        }
        ListFormat::Table => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from).to_vec()];
            for (s, status) in &containers {
                rows.push(vec![
                    s.id.clone(),
                    s.reported_pid(*status).to_string(),
                    status.as_str().to_owned(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print_table(&rows);
        }
    }
    Ok(())
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| if c + 1 == columns { cell.clone() } else { format!("{cell:<w$}", w = widths[c]) })
            .collect();
        println!("{}", cells.join("   "));
    }
}
