"""The Redis key layout: the one place that spells a key.

Sluice's own keys live under a namespace (``SLUICE_NAMESPACE``, default ``sluice``);
arq's keys keep arq's fixed prefixes so an arq worker finds the jobs we write.

    {ns}:queue                   sorted set  work no worker holds: a job id -> ms epoch when
                                             it may run [arq queue]; once a job is split into
                                             units, {id}#{k} -> when unit k may be handed out
                                             (+inf: waits for the units before it); the
                                             queue named "default" [arq queue]
    {ns}:queue:{name}            sorted set  the same, for the queue named {name}
    {ns}:queues                  set         the queue names ever used but "default"
    {ns}:leases                  sorted set  {id}#{k} -> ms epoch when the lease on unit k of
                                             job id lapses (or when a released unit may run)
    arq:job:{id}                 string      the job envelope (JSON) of a job written with
                                             raw commands [arq]; a Client's job has it in its
                                             status hash's ``envelope`` field instead
    arq:result:{id}              string      arq's result envelope (JSON)        [arq]
    {ns}:job:{id}                hash        status: state, pipeline, counts, times, stage
                                             timings; units, unit_size, units_done, run;
                                             unit:{k} = "{token} {tries}" while unit k is out;
                                             envelope (a Client's job) until it ends
    {ns}:job:{id}:inputs         list        the inputs of a job enqueued in chunks (not inline)
    {ns}:job:{id}:results        hash        input index -> item record (JSON)
    {ns}:job:{id}:blobs          hash        input index -> binary output (e.g. a thumbnail)
    {ns}:job:{id}:spec           string      the job (JSON), kept once it failed, for `retry`
    {ns}:failed                  sorted set  failed job id -> when it failed (ms epoch)
    {ns}:pipelines               hash        pipeline name -> description (JSON), written by workers
    {ns}:running                 set         ids of jobs with units out (started, not ended)
    {ns}:aborts                  sorted set  job id -> ms epoch when it was cancelled (kept a
                                             minute: every worker holding a unit stops it)
    {ns}:refused                 hash        job id -> why a job could not even be read (an id
                                             that breaks the id grammar); its ids are in failed
    {ns}:workers                 sorted set  worker id -> last heartbeat (ms epoch)
    {ns}:wake                    list        a token per job made ready, so an idle worker
                                             starts at once (kept to WAKE_TOKENS)
    {ns}:wake:{name}             list        the same, for the queue named {name}
    {ns}:worker:{wid}            hash        a worker's heartbeat details
    {ns}:events                  stream      job events (job, type, queue...), about
                                             SLUICE_EVENTS_MAXLEN kept (producer.contract.events)
    {ns}:rate:host:{host}        string      a host's rate limit: when its next request may go
                                             (GCRA's theoretical arrival time, ms on Redis's
                                             clock); expires once that time has passed
    {ns}:rate:pipeline:{name}    string      the same, for a pipeline's fetches
    {ns}:webhooks                sorted set  job id -> ms epoch when its ending's webhook is due
                                             (or when a worker's lease on sending it lapses)
    {ns}:webhook-default         string      the namespace's default webhook URL, kept alive
                                             by live workers with SLUICE_WEBHOOK_URL (the
                                             first written holds; expires LIVE_S after)
    {ns}:schedules               sorted set  schedule name -> ms epoch of its next tick
                                             (producer.contract.schedule_scripts)
    {ns}:schedule:{name}         hash        a schedule's published definition and last run
    {ns}:wait-mark               string      a counter bumped before each WAIT for replicas
                                             (SLUICE_REDIS_WAIT_REPLICAS; producer.redis.failover)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_QUEUE = "default"  # the queue a job goes to when it names none: arq's queue

# arq's own prefixes (arq/constants.py); a test checks they still match the installed arq.
ARQ_JOB_PREFIX = "arq:job:"
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"  # not used by Sluice: its leases are units'
ARQ_RESULT_PREFIX = "arq:result:"
ARQ_RETRY_PREFIX = "arq:retry:"  # not used by Sluice: tries are counted per unit
ARQ_ABORT_SET = "arq:abort"  # not used by Sluice: a cancel reaches every unit's worker

# Most tokens kept in the wake list: enough to wake every idle worker of a large fleet.
WAKE_TOKENS = 64

# The name of the one arq function every Sluice job calls.
JOB_FUNCTION = "sluice"

# Joins a job id and a unit number in the queue and lease sets: "{id}#{k}". Job ids never hold
# it (producer.contract.validation's grammar), so the last one splits a member unambiguously.
UNIT_SEPARATOR = "#"


def unit_member(job_id: str, unit: int) -> str:
    """The queue/lease-set member naming unit ``unit`` of a job."""
    return f"{job_id}{UNIT_SEPARATOR}{unit}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one namespace."""

    namespace: str = "sluice"

    @property
    def queue(self) -> str:
        return f"{self.namespace}:queue"

    def named_queue(self, name: str) -> str:
        """The sorted set of queue ``name``: "default" is arq's queue (``{ns}:queue``)."""
        return self.queue if name == DEFAULT_QUEUE else f"{self.queue}:{name}"

    def wake_for(self, queue: str) -> str:
        """The wake list of queue ``queue``: its workers wait on it when idle."""
        return self.wake if queue == DEFAULT_QUEUE else f"{self.wake}:{queue}"

    @property
    def queues(self) -> str:
        return f"{self.namespace}:queues"

    @property
    def pipelines(self) -> str:
        return f"{self.namespace}:pipelines"

    @property
    def failed(self) -> str:
        return f"{self.namespace}:failed"

    @property
    def running(self) -> str:
        return f"{self.namespace}:running"

    @property
    def leases(self) -> str:
        return f"{self.namespace}:leases"

    @property
    def aborts(self) -> str:
        return f"{self.namespace}:aborts"

    @property
    def refused(self) -> str:
        return f"{self.namespace}:refused"

    @property
    def workers(self) -> str:
        return f"{self.namespace}:workers"

    @property
    def wake(self) -> str:
        return f"{self.namespace}:wake"

    @property
    def events(self) -> str:
        return f"{self.namespace}:events"

    @property
    def webhooks(self) -> str:
        return f"{self.namespace}:webhooks"

    @property
    def webhook_default(self) -> str:
        return f"{self.namespace}:webhook-default"

    @property
    def wait_mark(self) -> str:
        return f"{self.namespace}:wait-mark"

    def rate(self, kind: str, name: str) -> str:
        """The rate limit of one host or pipeline (``kind``: "host" or "pipeline")."""
        return f"{self.namespace}:rate:{kind}:{name}"

    @property
    def schedules(self) -> str:
        return f"{self.namespace}:schedules"

    def schedule(self, name: str) -> str:
        return f"{self.namespace}:schedule:{name}"

    def worker(self, worker_id: str) -> str:
        return f"{self.namespace}:worker:{worker_id}"

    def job(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}"

    def inputs(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:inputs"

    def results(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:results"

    def blobs(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:blobs"

    def spec(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}:spec"

    def job_keys(self, job_id: str) -> tuple[str, ...]:
        """Sluice's keys of one job, the ones that share its result TTL."""
        return (
            self.job(job_id),
            self.inputs(job_id),
            self.results(job_id),
            self.blobs(job_id),
            self.spec(job_id),
        )

    @staticmethod
    def arq_job(job_id: str) -> str:
        return ARQ_JOB_PREFIX + job_id

    @staticmethod
    def arq_result(job_id: str) -> str:
        return ARQ_RESULT_PREFIX + job_id
