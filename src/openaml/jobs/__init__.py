"""Background jobs: the engine that schedules them and the tasks that do the work."""
