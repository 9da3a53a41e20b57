"""A job's life on the worker side, in units any worker can take.

    claim ──▶ unit held (lease + token) ──▶ attempt: feed its inputs to the stages
      ▲           │ renew: check the token, extend              │
      │           ▼                                              ▼
      └── lapsed or released ◀──────────── ending: done / release / fail the job

A job is split into units of ``SLUICE_UNIT_INPUTS`` inputs when a worker first claims it
(`claim`); each unit is claimed on its own, by any worker, with a fresh token. The lease
(`lease`) is check-and-extend: a worker that finds its token gone stops that unit at once.
Every write of a unit's records, progress and ending is fenced by its token (`endings`,
`worker.stages.store`), so a worker paused past its lease can neither undo nor double what
the worker that took over did. The last unit's ending completes the job only when every
input has its record (`endings`). One attempt at one unit (`attempt`) ends in one typed
`Outcome` (`outcome`).
"""
