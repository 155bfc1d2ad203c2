"""Execution: where trials run. Devices and slots, the worker pool, Ray tasks, the live table.

The sweep process never imports TensorFlow or touches an accelerator: workers do.
"""
