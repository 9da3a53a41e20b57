"""Observing the worker: Prometheus metrics (`metrics`) and their recording on the hot paths
(`instrument`, plain values in), the heartbeat (`heartbeat`), logs (`logging`) and traces
(`tracing`). It reads nothing of the stages or the job's life; they call it.
"""
