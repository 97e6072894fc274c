//! The TypeScript the UI builds against, generated from the Rust types: every DTO's
//! declaration (ts-rs) and the command table (name, arguments, result).
//! `cargo test -p sprig-app bindings` fails when `ui/src/app/generated/bindings.ts` differs;
//! `SPRIG_WRITE_BINDINGS=1` rewrites it.

use ts_rs::TS;

use crate::dto;

/// Where the generated file lives, relative to this crate.
pub const PATH: &str = "../ui/src/app/generated/bindings.ts";

fn decl<T: TS>(out: &mut String) {
    let cfg = ts_rs::Config::default();
    out.push_str("export ");
    out.push_str(&T::decl(&cfg));
    out.push_str("\n\n");
}

/// The whole generated file.
#[must_use]
pub fn typescript() -> String {
    let mut out = String::from(
        "// Generated from src-tauri (dto.rs, error.rs, the command table in lib.rs) by\n\
         // `SPRIG_WRITE_BINDINGS=1 cargo test -p sprig-app bindings`. Do not edit.\n\n",
    );
    decl::<crate::AppError>(&mut out);
    decl::<dto::Phase>(&mut out);
    decl::<dto::Blocked>(&mut out);
    decl::<dto::UiPolicies>(&mut out);
    decl::<dto::SessionInfo>(&mut out);
    decl::<dto::EnrolLink>(&mut out);
    decl::<dto::AppStatus>(&mut out);
    decl::<dto::EnrolPreviewDto>(&mut out);
    decl::<dto::StaffTileDto>(&mut out);
    decl::<dto::ChildDto>(&mut out);
    decl::<dto::MediaDto>(&mut out);
    decl::<dto::ReplyDto>(&mut out);
    decl::<dto::EntryDto>(&mut out);
    decl::<dto::RevisionDto>(&mut out);
    decl::<dto::ChildCountDto>(&mut out);
    decl::<dto::StaffCountDto>(&mut out);
    decl::<dto::AreaCountDto>(&mut out);
    decl::<dto::CoverageDto>(&mut out);
    decl::<dto::SyncStatus>(&mut out);
    decl::<dto::DoneReport>(&mut out);
    decl::<dto::StagedMedia>(&mut out);
    decl::<dto::NewObservation>(&mut out);
    decl::<dto::EntryChange>(&mut out);
    out.push_str("/** Every command: its arguments (snake_case, as sent) and its result. */\n");
    out.push_str("export type Commands = {\n");
    for (name, args, ret) in crate::command_table() {
        let args = if args.is_empty() {
            "Record<string, never>".to_owned()
        } else {
            let fields: Vec<String> = args.iter().map(|(a, t)| format!("{a}: {t}")).collect();
            format!("{{ {} }}", fields.join("; "))
        };
        let ret = if ret == "null" {
            "void".to_owned()
        } else {
            ret
        };
        out.push_str(&format!("  {name}: {{ args: {args}; returns: {ret} }};\n"));
    }
    out.push_str("};\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn bindings_are_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(super::PATH);
        let want = super::typescript();
        if std::env::var("SPRIG_WRITE_BINDINGS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `SPRIG_WRITE_BINDINGS=1 cargo test -p sprig-app bindings`",
            path.display()
        );
    }
}
