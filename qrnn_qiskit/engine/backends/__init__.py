"""The exact engine's backends. Each takes a :class:`~qrnn_qiskit.engine.plan.StepPlan` and offers

* ``forward(params, io_inputs, io_targets, draw, uniforms) -> (probs, outcomes, taken, acceptance)``
  (io order; a step's outcome is drawn at ``uniforms[b, t]`` where ``draw[b, t]``, else its target);
* ``loss_and_gradient_rows(params, io_inputs, io_targets, scored) -> (loss_rows, grad_rows, probs,
  acceptance)`` under teacher forcing, one row per sequence.

``numpy`` is the reference, ``cpu`` compiled kernels, ``cuda`` CUDA kernels (the ``gpu`` extra).
"""
