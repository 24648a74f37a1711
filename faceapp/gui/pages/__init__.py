"""The app's screens: live, enroll, door, people, access log, settings."""
