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
    {ns}:layout                  string      the shard count the fleet runs with (SLUICE_SHARDS),
                                             written by the first process to start

Sharded (SLUICE_SHARDS > 1, or a Redis Cluster): the queue is spread over N shards, each in
one hash slot. Shard s of namespace ns spells its keys under the hash-tagged prefix
``{ns.s}`` instead of ``ns``: the queues, wake lists, leases, running, failed, aborts,
refused, events, webhooks, a copy of the pipelines registry, and every key of each job whose
id falls in it (`shard_of`: CRC-32 of the id, mod N), including the envelope
(``{ns.s}:arq:job:{id}``; arq itself cannot read a sharded queue). Every other key is
fleet-wide and keeps its name above; no script touches both kinds. On a Redis Cluster the
schedules' keys (the set and each schedule's hash) have the namespace in braces, as a hash
tag, so that one script reaches both, as the fleet's wake lists do; a tick's job goes to
its shard in a script of its own (producer.contract.schedule_scripts).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

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


MAX_SHARDS = 1024  # most shards a namespace's queue may be spread over (SLUICE_SHARDS)


def shard_of(job_id: str, shards: int) -> int:
    """The shard of a job: CRC-32 (zlib's, IEEE) of its id's UTF-8 bytes, mod the shard count;
    anyone finds a job's keys from its id alone (docs/wire-format.md)."""
    return zlib.crc32(job_id.encode("utf-8", "surrogateescape")) % shards if shards > 1 else 0


def unit_member(job_id: str, unit: int) -> str:
    """The queue/lease-set member naming unit ``unit`` of a job."""
    return f"{job_id}{UNIT_SEPARATOR}{unit}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one namespace; on a sharded layout, a view of one shard (``shard``), or
    the fleet's view (``shard`` None), whose job keys follow each job's shard and which has
    no queue of its own (`shard_keys`, `for_job`, `every_shard`)."""

    namespace: str = "sluice"
    shards: int = 1  # SLUICE_SHARDS
    tagged: bool = False  # hash-tagged even with one shard (a Redis Cluster)
    shard: int | None = None  # this view's shard, on a sharded layout
    home: str = field(init=False, repr=False, compare=False)  # the prefix of per-shard keys

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"SLUICE_SHARDS must be 1 to {MAX_SHARDS}, not {self.shards}")
        home = self.namespace
        if self.sharded:
            home = "" if self.shard is None else f"{{{self.namespace}.{self.shard}}}"
        object.__setattr__(self, "home", home)

    @property
    def sharded(self) -> bool:
        return self.shards > 1 or self.tagged

    def shard_keys(self, shard: int) -> Keys:
        """The view of shard ``shard`` (this view itself when not sharded)."""
        if not self.sharded or shard == self.shard:
            return self
        return Keys(self.namespace, self.shards, self.tagged, shard)

    def for_job(self, job_id: str) -> Keys:
        """The view of the shard that holds job ``job_id``."""
        if not self.sharded:
            return self
        return self.shard_keys(shard_of(job_id, self.shards))

    def every_shard(self) -> list[Keys]:
        """A view of each shard, in order (just this one when not sharded)."""
        if not self.sharded:
            return [self]
        return [self.shard_keys(s) for s in range(self.shards)]

    def _own(self) -> str:
        """The prefix of this view's per-shard keys (the fleet view of shards has none)."""
        if not self.home:
            raise ValueError("a sharded layout has no namespace-wide queue: use shard_keys()")
        return self.home

    def _job_home(self, job_id: str) -> str:
        """The prefix of a job's keys in the fleet's view of a sharded layout."""
        return f"{{{self.namespace}.{shard_of(job_id, self.shards)}}}"

    @property
    def layout(self) -> str:
        return f"{self.namespace}:layout"

    @property
    def queue(self) -> str:
        return f"{self._own()}:queue"

    def named_queue(self, name: str) -> str:
        """The sorted set of queue ``name``: "default" is arq's queue (``{ns}:queue``)."""
        return self.queue if name == DEFAULT_QUEUE else f"{self.queue}:{name}"

    def wake_for(self, queue: str) -> str:
        """The wake list of queue ``queue``: its workers wait on it when idle."""
        return self.wake if queue == DEFAULT_QUEUE else f"{self.wake}:{queue}"

    @property
    def script_wake_tokens(self) -> int:
        """The wake tokens a script keeps in the shard's own list (``wake_for``): none on a
        sharded layout, where no worker waits on it (the caller pushes the fleet's list, and
        ``{ns.s}:wake`` may be the fleet list of a namespace named ``ns.s``)."""
        return 0 if self.sharded else WAKE_TOKENS

    def fleet_wake_for(self, queue: str) -> str:
        """The wake list idle workers wait on: on a sharded layout, one for every shard (a
        BLPOP cannot span hash slots), pushed after the shard's script; their names share one
        hash tag there, as one BLPOP waits on those of every queue a worker serves."""
        wake = f"{{{self.namespace}}}:wake" if self.sharded else f"{self.namespace}:wake"
        return wake if queue == DEFAULT_QUEUE else f"{wake}:{queue}"

    @property
    def queues(self) -> str:
        return f"{self.namespace}:queues"

    @property
    def shard_queues(self) -> str:
        """The queue registry the scripts write: the fleet's, or on a sharded layout the
        shard's (the fleet's is the union of them and of the workers' queues)."""
        return self.queues if not self.sharded else f"{self._own()}:queues"

    @property
    def pipelines(self) -> str:
        return f"{self.namespace}:pipelines"

    @property
    def shard_pipelines(self) -> str:
        """The registry a claim reads: the fleet's, or on a sharded layout the shard's copy."""
        return self.pipelines if not self.sharded else f"{self._own()}:pipelines"

    @property
    def failed(self) -> str:
        return f"{self._own()}:failed"

    @property
    def running(self) -> str:
        return f"{self._own()}:running"

    @property
    def leases(self) -> str:
        return f"{self._own()}:leases"

    @property
    def aborts(self) -> str:
        return f"{self._own()}:aborts"

    @property
    def refused(self) -> str:
        return f"{self._own()}:refused"

    @property
    def workers(self) -> str:
        return f"{self.namespace}:workers"

    @property
    def wake(self) -> str:
        return f"{self._own()}:wake"

    @property
    def events(self) -> str:
        return f"{self._own()}:events"

    @property
    def webhooks(self) -> str:
        return f"{self._own()}:webhooks"

    @property
    def webhook_default(self) -> str:
        return f"{self.namespace}:webhook-default"

    @property
    def shard_webhook_default(self) -> str:
        """The default webhook URL the scripts read: on a sharded layout, the shard's copy
        (written beside the fleet's, `worker.webhooks.default`)."""
        return self.webhook_default if not self.sharded else f"{self._own()}:webhook-default"

    @property
    def wait_mark(self) -> str:
        return f"{self.namespace}:wait-mark"

    def rate(self, kind: str, name: str) -> str:
        """The rate limit of one host or pipeline (``kind``: "host" or "pipeline")."""
        return f"{self.namespace}:rate:{kind}:{name}"

    @property
    def _fleet_tag(self) -> str:
        """The prefix of fleet-wide keys a script touches together: on a Redis Cluster, the
        hash tag ``{ns}`` puts them in one slot."""
        return f"{{{self.namespace}}}" if self.tagged else self.namespace

    @property
    def schedules(self) -> str:
        return f"{self._fleet_tag}:schedules"

    def schedule(self, name: str) -> str:
        return f"{self._fleet_tag}:schedule:{name}"

    def worker(self, worker_id: str) -> str:
        return f"{self.namespace}:worker:{worker_id}"

    def job(self, job_id: str) -> str:
        return f"{self.home or self._job_home(job_id)}:job:{job_id}"

    def inputs(self, job_id: str) -> str:
        return f"{self.home or self._job_home(job_id)}:job:{job_id}:inputs"

    def results(self, job_id: str) -> str:
        return f"{self.home or self._job_home(job_id)}:job:{job_id}:results"

    def blobs(self, job_id: str) -> str:
        return f"{self.home or self._job_home(job_id)}:job:{job_id}:blobs"

    def spec(self, job_id: str) -> str:
        return f"{self.home or self._job_home(job_id)}:job:{job_id}:spec"

    def job_keys(self, job_id: str) -> tuple[str, ...]:
        """Sluice's keys of one job, the ones that share its result TTL."""
        return (
            self.job(job_id),
            self.inputs(job_id),
            self.results(job_id),
            self.blobs(job_id),
            self.spec(job_id),
        )

    def arq_job(self, job_id: str) -> str:
        if not self.sharded:
            return ARQ_JOB_PREFIX + job_id
        return f"{self.home or self._job_home(job_id)}:{ARQ_JOB_PREFIX}{job_id}"

    def arq_result(self, job_id: str) -> str:
        if not self.sharded:
            return ARQ_RESULT_PREFIX + job_id
        return f"{self.home or self._job_home(job_id)}:{ARQ_RESULT_PREFIX}{job_id}"
