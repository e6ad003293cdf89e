package dev.flowmail.registry.deployment;

import apicurio.common.app.components.config.index.DynamicPropertiesInfoRecorder;
import io.apicurio.common.apps.config.DynamicConfigPropertyDef;
import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import io.quarkus.arc.deployment.BeanDiscoveryFinishedBuildItem;
import io.quarkus.arc.deployment.SyntheticBeanBuildItem;
import io.quarkus.arc.processor.InjectionPointInfo;
import io.quarkus.deployment.annotations.BuildProducer;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.annotations.ExecutionTime;
import io.quarkus.deployment.annotations.Record;
import java.util.ArrayList;
import java.util.List;
import org.jboss.jandex.AnnotationInstance;
import org.jboss.jandex.AnnotationValue;
import org.jboss.jandex.DotName;

/** Lists the registry's {@code @Dynamic} config properties (settable at run time) as a bean. */
public class DynamicConfigIndexStep {

    private static final DotName CONFIG_PROPERTY =
            DotName.createSimple("org.eclipse.microprofile.config.inject.ConfigProperty");
    private static final DotName DYNAMIC = DotName.createSimple("io.apicurio.common.apps.config.Dynamic");

    @BuildStep
    @Record(ExecutionTime.RUNTIME_INIT)
    void dynamicProperties(DynamicPropertiesInfoRecorder recorder, BeanDiscoveryFinishedBuildItem beans,
                           BuildProducer<SyntheticBeanBuildItem> synthetic) throws ClassNotFoundException {
        List<DynamicConfigPropertyDef> found = new ArrayList<>();
        for (InjectionPointInfo point : beans.getInjectionPoints()) {
            AnnotationInstance config = point.getRequiredQualifier(CONFIG_PROPERTY);
            if (config == null || !point.isField()) {
                continue;
            }
            AnnotationInstance dynamic = point.getTarget().asField().annotation(DYNAMIC);
            if (dynamic == null) {
                continue;
            }
            // A dynamic property is injected as Supplier<T>; T is its type.
            String typeName = point.getRequiredType().asParameterizedType().arguments().get(0).name().toString();
            AnnotationValue fallback = config.value("defaultValue");
            if (fallback == null) {
                throw new IllegalStateException("dynamic property " + config.value("name").asString()
                        + " has no default value");
            }
            DynamicConfigPropertyDef def = new DynamicConfigPropertyDef(config.value("name").asString(),
                    Class.forName(typeName), fallback.asString());
            if (dynamic.value("label") != null) {
                def.setLabel(dynamic.value("label").asString());
            }
            if (dynamic.value("description") != null) {
                def.setDescription(dynamic.value("description").asString());
            }
            if (dynamic.value("requires") != null) {
                def.setRequires(dynamic.value("requires").asStringArray());
            }
            found.add(def);
        }
        synthetic.produce(SyntheticBeanBuildItem.configure(DynamicConfigPropertyList.class)
                .runtimeValue(recorder.initializePropertiesInfo(found)).unremovable().setRuntimeInit().done());
    }
}
