"""Options of the fault-injection suite: ``LLMQUEUE_FAULT_SOAK=N`` runs N seeded random faults per
command and signal instead of one (a soak), ``LLMQUEUE_FAULT_SEED`` changes the kill points."""
