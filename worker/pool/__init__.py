"""The transform pool: a generic asyncio process executor (`process_pool`, with the loop each
of its processes runs, `process_child`), which imports nothing of Sluice, and Sluice's use of
it (`transform_pool`, and `transform_child`: what a pool process does with a batch of inputs).
"""
