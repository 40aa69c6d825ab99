"""Operation handlers of the Request Management System itself (ForwardDISET)."""
