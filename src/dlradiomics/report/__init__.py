"""Reports: one self-contained HTML file (`html`), matplotlib figures (`figures`), the study report (`study_report`)."""
