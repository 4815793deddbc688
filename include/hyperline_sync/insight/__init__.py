"""What a run sent, seen by a billing team: usage per day, customer and event type (`usage`), the
run's HTML report (`html_report`, drawn with `svg`), and the change a mapping makes (`mapping_diff`)."""
