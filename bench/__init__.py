# Unmeasured runs before the measured ones go on, at most WARM_STACK_RUNS_MAX of them, while
# Kafka and OpenSearch spent more than WARM_JIT_SHARE of their CPU JIT compiling
# (bench/e2e.py's _warm_stack; the command's --warm-runs)
WARM_STACK_RUNS_MAX = 8
WARM_JIT_SHARE = 0.25
