"""Schedules: the periodic jobs a worker fires, read from its settings at start-up
(`definitions`), published to Redis and fired once per tick across every worker (`firing`,
`scheduler`). The definition and the ticks are the contract's (`producer.contract.schedules`,
`producer.contract.ticks`)."""
