// Placeholder so the target is not empty; delete once the target has real sources.
