"""City event-management centre (城市事件管理中心): alarms that the event catalogue maps become
events with a lifecycle, a time limit and assessment metrics. See README.md.

    catalogue.py lifecycle.py metrics.py   pure: data, state machine, metrics
    store.py                               SQLite: events + transitions
    api.py service.py overdue.py           HTTP API, the process, overdue escalations on MQTT
    outbox.py                              rule-engine side: durable delivery to the centre
"""
