"""
Enrollment backends: the code that talks to an LMS.

``base`` defines the contract; each other module is one backend. Backends are
chosen per course by the registry (``lms_bridge.registry``).
"""
