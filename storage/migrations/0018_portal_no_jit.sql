-- The portal's queries are short and interactive, but the planner's estimates over the rollup
-- views of the native path pass jit_above_cost, and JIT compilation then costs 0.4-0.5 s per
-- query while the query itself runs in ≈ 40 ms (measured with bench.storage_backends: a year of
-- daily energy of one site). The ingest role has had JIT off since 0001; the portal joins it.
-- The inspector login keeps JIT: its ad-hoc analytical queries over years may profit from it.
ALTER ROLE nxem_portal SET jit = off;
