"""What a finished run says: the metrics records, the terminal table, report.md and plots."""
