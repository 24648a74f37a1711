"""Face detection (MTCNN, 5 landmarks), 5-point alignment and quality checks."""
