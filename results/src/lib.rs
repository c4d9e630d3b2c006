//! The result schema (filled by the harness issue): typed rows with units, one folder per run.
