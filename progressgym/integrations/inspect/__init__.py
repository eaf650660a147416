"""progressgym's moral evaluation as an inspect_ai task (``pip install 'progressgym[inspect]'``).

inspect's model API returns text, so this is progressgym's generation protocol (``--mode generate``): every
prompt of a bank split is asked once, the reply is read with progressgym's parser
(:func:`~progressgym.evaluation.scoring.parse_answer`), and the task reports the 19 value dimensions and the
invalid and refusal rates as metrics::

    inspect eval progressgym/progressgym_values --model hf/MODEL_DIR -T split=evaluation

The task is :func:`progressgym.integrations.inspect.task.progressgym_values`; importing this package does
not load inspect_ai.
"""
