"""Job 3, the staff-room medical board: who is on it, the PDF and HTML, status, photo prep."""
