"""Schedules: notebook jobs and evaluation runs started on a cron expression or a fixed interval."""
