"""The contracts of Cedar's workflows: one module per workflow, holding everything that crosses its boundary.

A module names its workflow (the registered name), its input, the signals, updates and queries it takes with their
payloads and results, the state it carries across continue-as-new, and the inputs and results of its activities.
Workflows, activities, the API, the workers and the tests all import from here, so no layer imports another's
implementation to learn a message's shape (an activity never imports a workflow module). A message sent to a
workflow lives with the workflow that receives it. Only pydantic models, enums and constants live here: no I/O, no
Temporal decorators. Payloads are decoded by field names, so fields keep their names and types; new fields are
optional.

``enrollment``: EnrollmentWorkflow. ``billing``: FamilyBillingWorkflow. ``dunning``: FamilyDunningWorkflow.
``scheduled``: the workflows Temporal Schedules start (dunning sweep, lesson reminders, reconciliation, Stripe
catch-up). ``email``: the one email activity every workflow calls.
"""
