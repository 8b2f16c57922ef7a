"""What people read: `longrnn report` tables and curves (`report`, `html`), results pages of a sweep
(`results_page`, `reconstruction_page`, `recall_plot`, `vaa_plot`), the leaderboard (`leaderboard`),
and the numbers and colours every page shares (`formatting`, `colours`)."""
