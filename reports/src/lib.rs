//! Reports rendered from stored results only (filled by the reports issue).
