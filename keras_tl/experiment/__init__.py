"""Running an experiment: trial identity, the plan, source models, the trial body,
workers and executors, the run folder and `evaluate`."""
