"""progressgym's moral evaluation as an inspect_ai task (``pip install 'progressgym[inspect]'``).

inspect's model API returns text, so this is progressgym's generation protocol (``--mode generate``): every
prompt of a bank split is asked once, the reply is read with progressgym's parser
(:func:`~progressgym.evaluation.scoring.parse_answer`), and the task reports the 19 value dimensions and the
invalid and refusal rates as metrics::

    inspect eval progressgym/progressgym_values --model hf/local -M model_path=MODEL_DIR -M do_sample=false

Replies are greedy (temperature 0, with progressgym's token budget per question format); inspect's ``hf``
provider samples unless given ``-M do_sample=false``, and then replies exactly as progressgym's ``hf``
backend generates. ``-T`` chooses the bank: ``-T split=elicitation``, ``-T bank=progressgym -T
bank_path=DIR``, ``-T export=DIR`` (a folder written by ``python -m progressgym.evaluate export``).

The task is :func:`progressgym.integrations.inspect.task.progressgym_values`; importing this package does
not load inspect_ai.
"""
