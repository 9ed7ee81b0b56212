"""The demo tour: one list of steps per engine, assembled in `ecrm_ops.tour.run`."""
